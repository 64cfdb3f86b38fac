"""Small machines and impatient users: the program under address-space
limits (ulimit -v) and cgroup memory limits from 20 to 400 MB either works
or fails at once with one line saying that memory ran out and how much the
run needs, never hangs, is never killed, never exits without a word; SIGINT
and SIGTERM stop a 2048x2048 run promptly, with exit 130 / 143 and no
output or temporary file left; u2net_ctx_cancel from another thread
(build/test_cancel); --threads beyond the cores is capped with a note.
Prints the smallest limit that works next to the run's peak RSS and address
space, and how long stopping took."""
import os
import resource
import signal
import subprocess
import time

import testlib

LIMITS_MB = [20, 25, 30, 35, 36, 37, 38, 40, 42, 45, 50, 60, 80, 100, 150, 200, 250, 300, 350, 400]
FAIL_SECONDS = 5.0   # a refusal takes milliseconds; this only catches a hang
STOP_SECONDS = 2.0   # the network's run is cancelled within tens of milliseconds


def _image(d):
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(5)
    a = (rng.random((300, 400, 3)) * 255).astype("uint8")
    path = os.path.join(d, "photo.png")
    Image.fromarray(a).save(path)
    return path


def _run(args, preexec=None):
    """(status, stderr, seconds) of one run; status None when it hung."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, preexec_fn=preexec)
    try:
        err = p.communicate(timeout=120)[1].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return None, "hung for 120 s", 120.0
    return p.returncode, err, time.monotonic() - t0


def _check_outcome(label, status, err, seconds, out):
    """Problems with one limited run: it worked (status 0, a whole output)
    or refused in one line saying how much it needs."""
    lines = [ln for ln in err.splitlines() if ln.startswith("u2net: ")]
    if status == 0:
        return [] if os.path.getsize(out) > 0 else ["%s: status 0 but an empty output" % label]
    problems = []
    if status != 1:
        problems.append("exit status %s (%s)" % (status, "killed by signal %d" % -status
                                                  if status is not None and status < 0 else err.strip()))
    elif len(lines) != 1 or "out of memory" not in lines[0] or " needs " not in lines[0]:
        problems.append("not one line saying out of memory and what it needs: %r" % err)
    if seconds > FAIL_SECONDS:
        problems.append("took %.1f s to fail" % seconds)
    return ["%s: %s" % (label, p) for p in problems]


def _sweep(kind, out, runner):
    """runner(MB) under each limit; returns (smallest working MB, problems)."""
    problems, smallest = [], None
    for mb in LIMITS_MB:
        if os.path.exists(out):
            os.remove(out)
        status, err, seconds = runner(mb)
        first = (err.strip().splitlines() or [""])[0]
        print("    %s %3d MB: %s %.2f s %s" % (kind, mb, "works" if status == 0 else "status %s" % status,
                                              seconds, first[:150] if status else ""))
        problems += _check_outcome("%s %d MB" % (kind, mb), status, err, seconds, out)
        if status == 0 and smallest is None:
            smallest = mb
    return smallest, problems


def _peak(args):
    """Peak RSS and address space (MB) of an unlimited run, from the
    process's own /proc/PID/status just before it exits."""
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    peak_rss = peak_vm = 0.0
    # poll the status file: VmPeak and VmHWM are maxima, the last read is the answer
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmPeak:"):
                        peak_vm = max(peak_vm, int(line.split()[1]) * 1024 / 1e6)
                    elif line.startswith("VmHWM:"):
                        peak_rss = max(peak_rss, int(line.split()[1]) * 1024 / 1e6)
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.002)
    p.communicate()
    assert p.returncode == 0, "the unlimited run failed"
    return peak_rss, peak_vm


@testlib.tidy
def test_address_space_limits():
    testlib.need_engine_and_pil()
    if testlib.SANITIZE:
        raise testlib.Skip("AddressSanitizer reserves terabytes of address space")
    d = testlib.scratch_dir("limits_vm")
    photo, out = _image(d), os.path.join(d, "mask.png")
    args = [testlib.U2NET, photo, "-o", out, "-t", "mask", "--overwrite"]
    rss, vm = _peak(args)

    def runner(mb):
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
        return _run(args, preexec=limit)
    smallest, problems = _sweep("ulimit -v", out, runner)
    print("    U2NetP 320x320, 2 threads unlimited: peak RSS %.1f MB, address space %.1f MB; "
          "the smallest ulimit -v that works: %s MB (%.2fx the peak RSS)"
          % (rss, vm, smallest, (smallest or 0) * (1 << 20) / 1e6 / rss))
    assert not problems, "\n".join(problems)
    assert smallest is not None and smallest * (1 << 20) / 1e6 < 3 * rss, \
        "the smallest limit that works, %s MB, is not under 3x the peak RSS %.1f MB" % (smallest, rss)


def _memory_cgroup():
    """A fresh child of this process's memory cgroup (v1 or v2) that can be
    limited, as (folder, limit file, version), or None."""
    with open("/proc/self/cgroup") as f:
        lines = [ln.rstrip("\n").split(":", 2) for ln in f]
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            left, _, right = ln.partition(" - ")
            fields, tail = left.split(), right.split()
            mounts.append((fields[3], fields[4], tail[0], tail[2] if len(tail) > 2 else ""))
    for version in (1, 2):
        for ident, controllers, path in lines:
            if version == 1 and "memory" not in controllers.split(","):
                continue
            if version == 2 and (ident != "0" or controllers):
                continue
            for root, point, fstype, opts in mounts:
                if fstype != ("cgroup" if version == 1 else "cgroup2"):
                    continue
                if version == 1 and "memory" not in opts.split(","):
                    continue
                rel = path[len(root):] if root != "/" and path.startswith(root) else path
                child = os.path.join(point + rel, "u2net-test-%d" % os.getpid())
                limit = "memory.limit_in_bytes" if version == 1 else "memory.max"
                try:
                    os.mkdir(child)
                except OSError:
                    continue
                if os.path.exists(os.path.join(child, limit)):
                    return child, limit, version
                os.rmdir(child)
    return None


@testlib.tidy
def test_cgroup_memory_limits():
    testlib.need_engine_and_pil()
    if testlib.SANITIZE:
        raise testlib.Skip("AddressSanitizer's shadow memory is not the program's")
    group = _memory_cgroup()
    if not group:
        raise testlib.Skip("no memory cgroup this user may create and limit here")
    child, limit_file, version = group
    d = testlib.scratch_dir("limits_cgroup")
    photo, out = _image(d), os.path.join(d, "mask.png")
    args = [testlib.U2NET, photo, "-o", out, "-t", "mask", "--overwrite"]
    try:
        def write(name, value):
            path = os.path.join(child, name)
            if os.path.exists(path):
                with open(path, "w") as f:
                    f.write(value)

        def runner(mb):
            # no swap either; v1's memory + swap limit may never be under the
            # memory limit, so it is lifted first
            if version == 1:
                write("memory.memsw.limit_in_bytes", "-1")
                write(limit_file, str(mb << 20))
                write("memory.memsw.limit_in_bytes", str(mb << 20))
            else:
                write(limit_file, str(mb << 20))
                write("memory.swap.max", "0")

            def join():
                with open(os.path.join(child, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            return _run(args, preexec=join)
        smallest, problems = _sweep("cgroup v%d" % version, out, runner)
    finally:
        os.rmdir(child)
    print("    the smallest cgroup limit that works: %s MB" % smallest)
    assert not problems, "\n".join(problems)
    assert smallest is not None, "no limit up to %d MB worked" % LIMITS_MB[-1]


@testlib.tidy
def test_signals_stop_a_large_run():
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("limits_signals")
    photo = _image(d)
    second = os.path.join(d, "second.png")
    with open(photo, "rb") as a, open(second, "wb") as b:
        b.write(a.read())
    problems = []
    for sig, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        out = os.path.join(d, "out_%d" % sig)
        p = subprocess.Popen([testlib.U2NET, photo, second, "-o", out + "/", "--size", "2048",
                              "-t", "mask,rgba"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(1.5)  # into the network's run: a 2048x2048 one takes seconds
        t0 = time.monotonic()
        p.send_signal(sig)
        err = p.communicate(timeout=60)[1].decode("utf-8", "replace")
        took = time.monotonic() - t0
        left = sorted(os.listdir(out)) if os.path.isdir(out) else []
        print("    %s 1.5 s into a 2048x2048 run: exit %d after %.0f ms; %s"
              % (sig.name, p.returncode, took * 1e3, err.strip().splitlines()[0] if err.strip() else ""))
        if p.returncode != status:
            problems.append("%s: exit %d, not %d: %s" % (sig.name, p.returncode, status, err.strip()))
        if left:
            problems.append("%s: left %s in the output folder" % (sig.name, left))
        if took > STOP_SECONDS:
            problems.append("%s: took %.1f s to stop" % (sig.name, took))
        if "interrupted by %s" % sig.name not in err:
            problems.append("%s: no line saying so: %r" % (sig.name, err))
    assert not problems, "\n".join(problems)


def test_cancel_from_another_thread():
    exe = os.path.join(testlib.BUILD, "test_cancel")
    assert os.path.exists(exe), "missing %s (run make test)" % exe
    model = os.path.join(testlib.ROOT, "weights", "u2netp.u2nc")
    if not os.path.exists(model):
        raise testlib.Skip("no %s (make weights)" % model)
    side = "512" if testlib.SANITIZE else "1024"
    # the program's short spin (src/main.c): spinning threads on a busy
    # machine would make the whole run several times longer
    env = dict(os.environ, GOMP_SPINCOUNT="2000")
    p = testlib.run([exe, model, side, "4"], check=False, env=env, timeout=900)
    print("   ", p.stdout_text.strip().replace("\n", "\n    "))
    assert p.returncode == 0, "test_cancel exited %d: %s" % (p.returncode, p.stderr_text.strip())


@testlib.tidy
def test_threads_capped_at_the_cores():
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("limits_threads")
    photo, out = _image(d), os.path.join(d, "mask.png")
    cores = len(os.sched_getaffinity(0))
    p = testlib.run([testlib.U2NET, photo, "-o", out, "-t", "mask", "--threads", "1000"])
    note = "note: --threads 1000: this process may run on %d core" % cores
    assert note in p.stderr_text, p.stderr_text
    assert os.path.getsize(out) > 0
    p = testlib.run([testlib.U2NET, photo, "-o", out, "-t", "mask", "--overwrite", "--threads", "1"])
    assert "note:" not in p.stderr_text, p.stderr_text
    print("    --threads 1000 on %d cores: %s" % (cores, note))
