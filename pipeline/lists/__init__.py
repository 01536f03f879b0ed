"""Lists and indexes the stages consult: opt-out lists (robots, ai.txt, takedown ids) and the
decontamination n-gram index over evaluation sets."""
