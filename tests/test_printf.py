"""The compiled %f / %d formatting of detector valid's result files against Python's own
% formatting, which rounds a double's exact value to even as glibc's printf does."""
import numpy as np
import pytest

from darknet_py.evaluate.printf import parse, printf


def by_python(line, *columns):
    table = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    return (line * len(table)) % tuple(table.ravel().tolist())


def awkward_floats():
    """float32 values of every kind a result line holds, and the ones that test the rounding:
    ties at the seventh decimal (multiples of 1/128), tiny and subnormal values, negative zero,
    the largest below 2**31."""
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.uniform(-700, 700, 30000), rng.uniform(-1, 1, 30000),
        rng.uniform(-1, 1, 20000) * 10.0 ** rng.integers(-12, 9, 20000),
        np.arange(-5000, 5000) / 128, np.arange(-5000, 5000) / 2 ** 20,
        [0, -0.0, 1e-45, -1e-45, 5e-7, 4.9999997e-7, 2 ** 31 - 128, -(2 ** 31 - 128), .5, 1.5, 2.5e-6],
    ]).astype(np.float32)
    return values[:len(values) // 5 * 5].reshape(-1, 5)


def test_fixed_point_is_pythons_to_the_character():
    values = awkward_floats()
    line = "2008_000123 %f %f %f %f %f\n"
    assert printf(line, values) == by_python(line, values)


def test_integers_literals_and_percent_signs():
    rng = np.random.default_rng(8)
    ids = np.array([0, 1, -1, 79, 123456789, -98765])
    boxes = rng.uniform(0, 500, (6, 4)).astype(np.float32)
    score = rng.random(6).astype(np.float32)
    line = '{"image_id":42, "category_id":%d, "bbox":[%f, %f, %f, %f], "score":%f} 100%%\n'
    assert printf(line, ids, boxes, score) == by_python(line, ids, boxes, score)
    literals, kinds = parse("a %% b %d c %f\n")
    assert literals == ["a % b ", " c ", "\n"] and kinds.tolist() == [1, 0]


def test_values_beyond_the_exact_range_go_to_python():
    values = np.array([np.nan, np.inf, -np.inf, 3e9, -3e38], np.float32)
    assert printf("%f|\n", values) == by_python("%f|\n", values)
    assert printf("%f\n", np.zeros(0, np.float32)) == ""


def test_misuse_is_refused():
    with pytest.raises(ValueError, match="float32"):
        printf("%f\n", np.array([0.1]))              # a double that is not a float32
    with pytest.raises(ValueError, match="takes 2"):
        printf("%f %f\n", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="only %f"):
        printf("%s %f\n", np.zeros(3, np.float32))
