"""Test runner: runs every test_* function of tests/test_*.py (or of the
modules named on the command line, MODULE or MODULE.TESTPREFIX) and ends with the line `N passed, M failed, K skipped`."""
import importlib
import os
import shutil
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testlib  # noqa: E402


def main(argv):
    only = [a for a in argv if not a.startswith("-")]
    names = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    # "test_e2e" runs a module, "test_e2e.test_real" the tests of it whose
    # names start so
    mods = [o.split(".")[0] for o in only]
    if only:
        names = [n for n in names if any(m in n for m in mods)]
    # scratch folders of the previous run go; each test makes its own below
    shutil.rmtree(testlib.WORK, ignore_errors=True)
    passed = failed = skipped = 0
    failures = []
    for name in names:
        mod = importlib.import_module(name)
        tests = [(k, v) for k, v in vars(mod).items() if k.startswith("test_") and callable(v)]
        tests.sort(key=lambda kv: kv[1].__code__.co_firstlineno)
        picks = [o.split(".", 1)[1] for o in only if "." in o and o.split(".")[0] in name]
        if picks:
            tests = [kv for kv in tests if any(kv[0].startswith(p) for p in picks)]
        for tname, fn in tests:
            label = "%s.%s" % (name, tname)
            t0 = time.time()
            print("RUN  %s" % label, flush=True)
            try:
                fn()
            except testlib.Skip as e:
                skipped += 1
                print("SKIP %s: skipped: %s" % (label, e), flush=True)
                continue
            except Exception:
                failed += 1
                failures.append(label)
                traceback.print_exc()
                print("FAIL %s (%.1fs)" % (label, time.time() - t0), flush=True)
                continue
            passed += 1
            print("PASS %s (%.1fs)" % (label, time.time() - t0), flush=True)
    for f in failures:
        print("failed: %s" % f)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
