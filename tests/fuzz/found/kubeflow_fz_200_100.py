"""Found by the differential fuzzer (seed 200, pipeline 100), not reduced
yet: c1's default holds no None, so KFP types it as a list parameter, and
the run-time value below (None inside) is refused by KFP; the local run
accepts it and succeeds."""


from pipec import Pipeline, context, on_failure, retry, step, when

ctx = context(
    c0=['\U0008c633p\x82s\x03\x00'],
    c1=['', -61, 322],
)

C_s3_0 = {((frozenset(), frozenset()), False), ((frozenset({'true', -5e-324, True}), frozenset()), frozenset()), (1.0, '5')}


def gate_s1(c0):
    return not c0


def fallback_s2(c0):
    return (frozenset(), ())


# The run's context overrides (read by tests/test_fuzz.py).
RUN_OVERRIDES = {'c1': [{}, {}, ['é́', {'': '🚀'}, {'\x00': 0}, {'${HOME}': None, '': True, '1Ò\U000ac085': None}], {}]}


@step(outputs=['s0_a'])
@when(lambda c1: not c1)
def s0() -> list:
    return [2147483648, True, '㔾§ø<\U000d7b6b¥', 'ﬁ']


@step(outputs=['s1_a'])
@when(gate_s1)
def s1(d1_0=frozenset({((True, b'3\xe4w'), 2.7513013543813123e-227), (None, 2.5e-308), frozenset({(False, 8.503839919713988e-154), -999, True})})):
    return d1_0


@step(outputs=['s2_a', 's2_b'], foreach='c0')
@on_failure(fallback_s2)
def s2(c0):
    return (((), [1e+300, b'k.\xa6\x9c\xa0T', 'Á\x85\x13s\x01', False], [[], c0]), c0)


@step(inputs=['s0_a', 's1_a', 's2_b'], outputs=['s3_a', 's3_b'])
def s3(s0_a, s1_a, s2_b, c0):
    return [((b'>#\xaa\xb6\xbb', set()),), C_s3_0]


pipeline = Pipeline('kubeflow_fz_200_100', context=ctx, enable_cache=False)
pipeline.add_step(s0).add_step(s1).add_step(s3).add_step(s2)
