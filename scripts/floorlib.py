# SPDX-License-Identifier: GPL-3.0-or-later
"""The near-empty BPF programs of scripts/floor/floor.bpf.c, built with clang
and loaded through the system's libbpf (libbpf.so.1): the floors that
scripts/bench-floor measures, and the record floor (`sock_rec`) that
scripts/bench-overhead --floor runs beside Osprey and tcpdump."""
import ctypes, glob, mmap, os, struct, subprocess, sys, threading, time

from benchlib import ROOT

HOOKS = {"tp": "FLOOR_TP", "tp_exit": "FLOOR_TP_EXIT", "raw_tp": "FLOOR_RAW", "tp_btf": "FLOOR_TP_BTF",
         "btf_exit": "FLOOR_BTF_EXIT", "close": "FLOOR_CLOSE", "sock_btf": "FLOOR_SOCK_BTF",
         "sock_tp": "FLOOR_SOCK_TP", "sock_rec": "FLOOR_SOCK_REC", "sock_mem": "FLOOR_SOCK_MEM",
         "sock_stage": "FLOOR_SOCK_STAGE", "sock_pair": "FLOOR_SOCK_PAIR"}
RB_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


@RB_SAMPLE_FN
def RB_CALLBACK(ctx, data, size):
    """libbpf's ring_buffer_sample_fn: read the record (a copy of its bytes)."""
    ctypes.string_at(data, size)
    return 0


def build(d, hooks=None):
    """{hook: object file in d} of the named hooks (default: all of them)."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    inc = sorted(glob.glob(f"{target}/*/release/build/libbpf-sys-*/out/include")
                 + glob.glob(f"{target}/release/build/libbpf-sys-*/out/include"))
    if not inc:
        sys.exit(f"floor: libbpf headers not found under {target} (cargo build --release first)")
    objs = {}
    for hook in hooks or HOOKS:
        o = f"{d}/{hook}.o"
        subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-D{HOOKS[hook]}", "-D__TARGET_ARCH_x86",
                        f"-I{ROOT}/vmlinux/x86", f"-I{inc[-1]}", "-c", f"{ROOT}/scripts/floor/floor.bpf.c", "-o", o],
                       check=True)
        objs[hook] = o
    return objs


class Floor:
    """Load one object with libbpf and attach every program in it."""
    lib = None

    def __init__(self, path):
        if Floor.lib is None:
            lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
            for f, res, args in [("bpf_object__open_file", ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]),
                                 ("bpf_object__load", ctypes.c_int, [ctypes.c_void_p]),
                                 ("bpf_object__next_program", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
                                 ("bpf_program__attach", ctypes.c_void_p, [ctypes.c_void_p]),
                                 ("bpf_link__destroy", ctypes.c_int, [ctypes.c_void_p]),
                                 ("bpf_object__close", None, [ctypes.c_void_p]),
                                 ("bpf_object__find_map_fd_by_name", ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
                                 ("ring_buffer__new", ctypes.c_void_p,
                                  [ctypes.c_int, RB_SAMPLE_FN, ctypes.c_void_p, ctypes.c_void_p]),
                                 ("ring_buffer__consume", ctypes.c_int, [ctypes.c_void_p]),
                                 ("ring_buffer__free", None, [ctypes.c_void_p])]:
                getattr(lib, f).restype = res
                getattr(lib, f).argtypes = args
            Floor.lib = lib
        lib = Floor.lib
        self.obj = lib.bpf_object__open_file(path.encode(), None)
        if not self.obj or lib.bpf_object__load(self.obj):
            sys.exit(f"floor: loading {path} failed (errno {ctypes.get_errno()})")
        self.links = []
        p = lib.bpf_object__next_program(self.obj, None)
        while p:
            link = lib.bpf_program__attach(p)
            if not link:
                self.close()
                sys.exit(f"floor: attaching a program of {path} failed (errno {ctypes.get_errno()})")
            self.links.append(link)
            p = lib.bpf_object__next_program(self.obj, p)
        self.reader = None
        self.error = None   # the reader's, reported by close()
        fd = lib.bpf_object__find_map_fd_by_name(self.obj, b"rb")
        # the objects that write records count them (.bss: hits, records, lost)
        self.counts = fd >= 0 or lib.bpf_object__find_map_fd_by_name(self.obj, b"mem") >= 0
        if fd >= 0:
            self.stopping = threading.Event()
            self.reader = threading.Thread(target=self.drain, args=(fd,), daemon=True)
            self.reader.start()

    def drain(self, fd):
        """A minimal reader, libbpf's (as Osprey's): every millisecond, copy
        out each record waiting in the ring buffer."""
        lib = Floor.lib
        rb = lib.ring_buffer__new(fd, RB_CALLBACK, None, None)
        if not rb:
            self.error = f"floor: ring_buffer__new failed (errno {ctypes.get_errno()})"
            return
        while not self.stopping.is_set():
            if lib.ring_buffer__consume(rb) < 0:
                self.error = f"floor: reading the ring buffer failed (errno {ctypes.get_errno()})"
                break
            time.sleep(0.001)
        lib.ring_buffer__free(rb)

    def counters(self):
        """floor.bpf.c's (records, lost), or None for the objects that count none."""
        fd = Floor.lib.bpf_object__find_map_fd_by_name(self.obj, b".bss")
        if fd < 0 or not self.counts:
            return None
        with mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ) as bss:
            hits, records, lost = struct.unpack_from("<3Q", bss, 0)   # floor.bpf.c's globals, in order
        return records, lost

    def close(self):
        if self.reader:
            self.stopping.set()
            self.reader.join()
        for link in self.links:
            Floor.lib.bpf_link__destroy(link)
        Floor.lib.bpf_object__close(self.obj)
        if self.error:
            sys.exit(self.error)
