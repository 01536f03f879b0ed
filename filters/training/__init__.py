"""Training code for the shipped models: kept beside the pure scoring code of filters/, never imported by
it. classifier_data builds the quality classifier's training set and classifier_train trains it;
toxicity_train trains the toxicity model and picks its evaluative combiner (`gristmill train-toxicity`)."""
