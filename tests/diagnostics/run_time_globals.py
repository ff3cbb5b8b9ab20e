import os
import random
import time
import uuid
from datetime import datetime

from pipec import Pipeline, step

SEED = random.randint(0, 100)  # E: PC406
FILES = len(os.listdir("."))  # E: PC406
STARTED = time.time()  # E: PC406
RUN = uuid.uuid4().hex  # E: PC406
TODAY = datetime.now().date()  # E: PC406
HOME = os.environ["HOME"]  # E: PC406
random.seed(0)  # seeding is reproducible
TOTAL = 0
STAMPS = []
STAMPS.append(time.time())  # E: PC406
SQUARES = [i * i for i in range(3)]


def later(stamp=time.monotonic()):  # E: PC406
    return stamp


def bump():
    global TOTAL  # E: PC407
    TOTAL += 1


bump()


@step(outputs=["a"])
def load():
    return SEED, FILES, STARTED, RUN, TODAY, HOME, STAMPS, SQUARES, later(), TOTAL


@step(outputs=["b"])
def fine():
    return time.time()  # runs in the task, as it runs in the local step


pipeline = Pipeline("run_time").add_step(load).add_step(fine)
