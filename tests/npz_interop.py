#!/usr/bin/python3
"""npz_interop.py — numpy's side of tests/test_npz.cpp: files written by numpy for src/ddpm/io/formats/npz.cpp to
read, and np.load checks of the files it wrote. Run with Debian's /usr/bin/python3 (python3-numpy).

Usage:
  npz_interop.py write DIR      DIR/np_stored.npz (np.savez of pattern()), DIR/np_deflated.npz
                                (np.savez_compressed), DIR/np_single.npy (np.save of pattern()["arr_0"]),
                                DIR/np_fortran.npy (fortran_order=True), DIR/np_bigendian.npy ('>i4')
  npz_interop.py check FILE...  np.load of each FILE: an .npz must hold exactly pattern(), an .npy
                                pattern()["arr_0"]; same dtypes, shapes and values
Prints one line per file; exits 1 at the first mismatch, saying what differs.

pattern() is spelled out again in test_npz.cpp (pattern()); the two must agree.
"""
import os
import sys

import numpy as np


def pattern():
    i = lambda n: np.arange(n, dtype=np.int64)
    return {
        "arr_0": ((i(2 * 28 * 28) * 7) % 256).astype(np.uint8).reshape(2, 28, 28, 1),
        "i8": ((i(12) - 5) * 1000000007).reshape(3, 4),
        "f4": (i(6).astype(np.float32) * np.float32(0.5) - np.float32(1)).reshape(2, 3),
        "f8": np.array(3.25),
        "empty": np.zeros((0,), np.int32),
        "empty3": np.zeros((2, 0, 3), np.float64),
        "b1": i(3) % 2 == 0,
        "u2": (i(3) * 30000).astype(np.uint16),
        "i1": (i(4) * 50 - 100).astype(np.int8),
        "u4": np.array([4000000000, 7], np.uint32),
        "i4": (i(4) * -70000).astype(np.int32).reshape(2, 2),
        "u8": np.array([2**63 + 5, 9], np.uint64),
    }


def same(name, got, want):
    if got.dtype.str != want.dtype.str:
        return f"{name}: dtype {got.dtype.str}, expected {want.dtype.str}"
    if got.shape != want.shape:
        return f"{name}: shape {got.shape}, expected {want.shape}"
    if not np.array_equal(got, want):
        return f"{name}: values differ: {got.ravel()[:8]} vs {want.ravel()[:8]}"
    return None


def check(path):
    want = pattern()
    if path.endswith(".npy"):
        return same(path, np.load(path), want["arr_0"])
    with np.load(path) as z:
        if sorted(z.files) != sorted(want):
            return f"{path}: members {sorted(z.files)}, expected {sorted(want)}"
        z["arr_0"]  # the documented way in: np.load(path)['arr_0']
        for key in want:
            why = same(f"{path}[{key}]", z[key], want[key])
            if why:
                return why
    return None


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "write":
        d = sys.argv[2]
        np.savez(os.path.join(d, "np_stored.npz"), **pattern())
        np.savez_compressed(os.path.join(d, "np_deflated.npz"), **pattern())
        np.save(os.path.join(d, "np_single.npy"), pattern()["arr_0"])
        np.save(os.path.join(d, "np_fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)))
        np.save(os.path.join(d, "np_bigendian.npy"), np.arange(3, dtype=">i4"))
        print("wrote 5 files under", d)
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        for path in sys.argv[2:]:
            why = check(path)
            if why:
                print("npz_interop: MISMATCH:", why)
                return 1
            print("npz_interop: ok:", path)
        return 0
    print("usage: npz_interop.py write DIR | check FILE...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
