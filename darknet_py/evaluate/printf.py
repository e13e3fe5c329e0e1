"""C's fprintf of ``%f`` and ``%d`` for rows of float32 values, compiled: the result files of
detector valid hold a line per box and class, thousands an image at its .005 threshold, and
Python's formatting of them was the largest cost left on the thread that feeds the network.

``%f`` prints a float's exact binary value rounded to six decimals, ties to even (glibc's
printf and Python's % both do): for a float32 that is integer arithmetic, mantissa * 10**6
shifted by the exponent, so the compiled digits are the same characters, always. Values a
line cannot hold that way (NaN, infinities, magnitudes of 2**31 or more) send the whole block
to Python's formatting, which prints them as glibc does (a NaN without its sign)."""
import re

import numba
import numpy as np

F = np.float32
MAX_DIGITS = 24             # more than one conversion writes: %d's sign and 19 digits at most
EXACT_LIMIT = 2.0 ** 31     # below it, a float32's integer part fits the arithmetic below


def printf(line, *columns):
    """``line`` (a C format of %f and %d conversions; %% for a percent sign) filled from each
    row of ``columns`` (1-D, or 2-D for several conversions in a row) in turn, as Darknet's
    fprintf loop writes them. %f values must be float32 values (printed as printf prints a
    float), %d values whole numbers."""
    literals, kinds = parse(line)
    split = [c for column in columns for c in np.atleast_2d(np.asarray(column).T)]
    if len(split) != len(kinds):
        raise ValueError(f"{line!r} takes {len(kinds)} values a line, given {len(split)}")
    rows = len(split[0]) if split else 0
    if rows == 0:
        return ""
    fixed = np.column_stack([c for c, kind in zip(split, kinds) if kind == FIXED] or [np.zeros(rows)])
    integers = np.column_stack([c for c, kind in zip(split, kinds) if kind == INTEGER] or [np.zeros(rows)])
    if not (np.isfinite(fixed).all() and (np.abs(fixed) < EXACT_LIMIT).all()):
        return (line * rows) % tuple(np.column_stack(split).astype(np.float64).ravel().tolist())
    floats = fixed.astype(F)
    if (floats != fixed).any():
        raise ValueError("%f columns must hold float32 values")
    text = np.frombuffer("".join(literals).encode(), dtype=np.uint8)
    bounds = np.cumsum([0] + [len(part.encode()) for part in literals])
    out = np.empty(rows * (len(text) + len(kinds) * MAX_DIGITS), dtype=np.uint8)
    used = _write_lines(text, bounds, kinds, np.ascontiguousarray(floats).view(np.uint32),
                        integers.astype(np.int64), out)
    return out[:used].tobytes().decode()


FIXED, INTEGER = 0, 1
_CONVERSION = re.compile(r"%(%|f|d)")


def parse(line):
    """A format's literal parts (one more than its conversions) and its conversions' kinds."""
    literals, kinds, start, part = [], [], 0, ""
    for found in _CONVERSION.finditer(line):
        part += line[start:found.start()]
        start = found.end()
        if found.group(1) == "%":
            part += "%"
            continue
        literals.append(part)
        kinds.append(FIXED if found.group(1) == "f" else INTEGER)
        part = ""
    literals.append(part + line[start:])
    if len(_CONVERSION.sub("", line).split("%")) > 1:
        raise ValueError(f"{line!r}: only %f, %d and %% are formatted here")
    return literals, np.array(kinds, dtype=np.int64)


U = np.uint64


@numba.njit(cache=True, nogil=True)
def _write_lines(text, bounds, kinds, float_bits, integers, out):
    """Every row as the literal parts text[bounds[k]:bounds[k + 1]] with its values between
    them: the %f ones from float_bits (float32 bit patterns), the %d ones from integers, each
    in its turn. Returns the bytes written to ``out``."""
    n = 0
    for row in range(float_bits.shape[0]):
        next_fixed = next_integer = 0
        for k in range(len(kinds) + 1):
            for i in range(bounds[k], bounds[k + 1]):
                out[n] = text[i]
                n += 1
            if k == len(kinds):
                break
            if kinds[k] == 0:
                n = _write_fixed(U(float_bits[row, next_fixed]), out, n)
                next_fixed += 1
            else:
                value = integers[row, next_integer]
                next_integer += 1
                if value < 0:
                    out[n] = 45           # '-'
                    n += 1
                n = _write_unsigned(U(abs(value)), out, n)
    return n


@numba.njit(cache=True, nogil=True)
def _write_unsigned(value, out, n):
    count, rest = 1, value // U(10)
    while rest:
        count += 1
        rest //= U(10)
    for i in range(count - 1, -1, -1):
        out[n + i] = np.uint8(48) + np.uint8(value % U(10))
        value //= U(10)
    return n + count


@numba.njit(cache=True, nogil=True)
def _write_fixed(bits, out, n):
    """printf("%f", (double) value) for the finite float32 of these bits, below 2**31 in
    magnitude: value * 10**6, exactly (mantissa * 10**6 shifted by the exponent), rounded half
    to even, written as integer part and six decimals."""
    exponent = np.int64((bits >> U(23)) & U(0xFF))
    mantissa = bits & U(0x7FFFFF)
    if exponent == 0:
        shift = 149                       # subnormal: mantissa * 2**-149
    else:
        mantissa |= U(0x800000)
        shift = 150 - exponent            # mantissa * 2**-shift
    scaled = mantissa * U(1000000)
    if shift <= 0:
        millionths = scaled << U(-shift)
    elif shift >= 62:                     # below half a millionth: rounds to zero
        millionths = U(0)
    else:
        millionths = scaled >> U(shift)
        rest = scaled - (millionths << U(shift))
        half = U(1) << U(shift - 1)
        if rest > half or (rest == half and millionths & U(1)):
            millionths += U(1)
    if bits >> U(31):
        out[n] = 45                       # '-', as printf writes it for -0.0 and -0.0000001
        n += 1
    n = _write_unsigned(millionths // U(1000000), out, n)
    out[n] = 46                           # '.'
    fraction = millionths % U(1000000)
    for i in range(6, 0, -1):
        out[n + i] = np.uint8(48) + np.uint8(fraction % U(10))
        fraction //= U(10)
    return n + 7
