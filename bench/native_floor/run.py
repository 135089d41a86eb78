#!/usr/bin/env python
"""Time bench/native_floor/scan.c (compiled here with gcc -O2) over every `.jsonl.out` under a
folder, each file memory-mapped: the CPU a native answer parser would need, for comparison with
results.collect_outputs (what joined_results runs). Not part of the product.

    python bench/native_floor/run.py OUTPUTS_DIR
"""

import ctypes
import glob
import mmap
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
lib_path = os.path.join(tempfile.mkdtemp(prefix="native-floor-"), "libscan.so")
subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", lib_path, os.path.join(here, "scan.c")], check=True)
lib = ctypes.CDLL(lib_path)
lib.scan.restype = ctypes.c_long
lib.scan.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_long, ctypes.POINTER(ctypes.c_long)]
files = sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.jsonl.out"), recursive=True))
out = np.empty(256 << 20, dtype=np.uint8)
out_len = ctypes.c_long()
for rep in range(3):
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    lines = answer_bytes = 0
    for path in files:
        with open(path, "rb") as fh:
            m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            view = np.frombuffer(m, dtype=np.uint8)
            n = lib.scan(view.ctypes.data, view.size, out.ctypes.data, out.size, ctypes.byref(out_len))
            del view
            m.close()
        if n < 0:
            sys.exit(f"{path}: answers larger than the output buffer")
        lines += n
        answer_bytes += out_len.value
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"run {rep + 1}: {len(files)} files, {lines:,} lines, {answer_bytes / 1e9:.2f} GB of answer text, "
          f"wall {time.perf_counter() - start:.2f} s, CPU {cpu:.2f} s (one thread)")
