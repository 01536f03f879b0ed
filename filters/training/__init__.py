"""Training code for the shipped models: kept beside the pure scoring code of filters/, never imported by
it. classifier_data builds the quality classifier's training set, classifier_train trains it."""
