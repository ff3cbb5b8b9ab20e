from pipec import Pipeline

empty = Pipeline("empty")  # E: PC105
