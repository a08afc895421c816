"""Print the first line of MPI_Get_library_version() of the libmpi the dynamic linker finds (no MPI_Init needed)."""

import ctypes
import sys

# Open MPI's soname, then the MPICH ABI's (MPICH, Intel MPI).
for soname in ("libmpi.so.40", "libmpi.so.12"):
    try:
        lib = ctypes.CDLL(soname)
    except OSError:
        continue
    buf = ctypes.create_string_buffer(8192)
    length = ctypes.c_int(0)
    if lib.MPI_Get_library_version(buf, ctypes.byref(length)) != 0:
        sys.exit(f"{soname}: MPI_Get_library_version failed")
    text = buf.value[: length.value].decode(errors="replace").strip()
    print(soname + "\t" + (text.splitlines()[0] if text else ""))
    break
else:
    sys.exit("no libmpi.so.40 or libmpi.so.12 resolvable by the dynamic linker")
