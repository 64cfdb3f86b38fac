"""python -m u2net.dask_folder INPUT OUTPUT: the images of a folder cut out
on a Dask cluster (README.md, "Many machines").

    python -m u2net.dask_folder photos/ out/ --workers 2        # a local cluster
    python -m u2net.dask_folder photos/ out/ --scheduler tcp://host:8786 -t mask

Each task is a chunk of files, done by u2net.remove_many on a worker with
that worker process's Session (u2net.default_session: the model is loaded
once per process); files go by path, so every worker must see INPUT and
OUTPUT at the same paths (a shared file system). Outputs are named as the
program names them in a folder (OUTPUT/SUB/STEM_TYPE.png) and existing ones
are kept, so a run resumes an interrupted one, the program's own
--skip-existing runs included. Exit status 0 when every image was done or
skipped, 1 when some failed, 2 for a usage error.
"""
import argparse
import functools
import logging
import os
import sys
import time

# The program's folder inputs (src/paths.c).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tga", ".gif", ".pnm", ".ppm", ".pgm")


def find_jobs(input_dir, output_dir, out_type, recursive):
    """(src, dst) for the images of input_dir, in name order, hidden ones and
    anything below output_dir left out."""
    skip = os.path.realpath(output_dir) + os.sep
    jobs = []
    for folder, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and recursive
                         and not (os.path.realpath(os.path.join(folder, d)) + os.sep)
                         .startswith(skip))
        rel = os.path.relpath(folder, input_dir)
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if name.startswith(".") or ext.lower() not in IMAGE_EXTENSIONS:
                continue
            src = os.path.join(folder, name)
            if os.path.realpath(src).startswith(skip):
                continue
            jobs.append((src, os.path.normpath(os.path.join(output_dir, rel,
                                                            "%s_%s.png" % (stem, out_type)))))
    return jobs


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m u2net.dask_folder", description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="a folder of images")
    ap.add_argument("output", help="the folder the cutouts go to")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="a running Dask scheduler's address (tcp://host:8786)")
    where.add_argument("--workers", type=int, default=2,
                       help="else a local cluster of this many worker processes (2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads of each worker's runs (local: the cores / workers; "
                         "with --scheduler: 0, all the worker machine's cores)")
    ap.add_argument("-t", "--type", choices=("rgba", "mask"), default="rgba")
    ap.add_argument("-m", "--model", default=None, help="a model name or file (u2netp)")
    ap.add_argument("--size", type=int, default=None, help="network input size (the model's)")
    ap.add_argument("--alpha-matting", action="store_true")
    ap.add_argument("-r", "--recursive", action="store_true", help="walk the sub-folders")
    ap.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    ap.add_argument("--chunk", type=int, default=8, help="images a task (8)")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.input):
        ap.error("%s is not a folder" % a.input)
    if a.workers < 1 or a.chunk < 1 or (a.threads is not None and a.threads < 0):
        ap.error("--workers and --chunk are at least 1, --threads at least 0")

    from dask.distributed import Client, LocalCluster, as_completed
    import u2net

    jobs = find_jobs(a.input, a.output, a.type, a.recursive)
    start = time.perf_counter()
    if a.scheduler:
        cluster, client = None, Client(a.scheduler)
        threads = a.threads or 0
    else:
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
        threads = a.threads if a.threads is not None else max(1, (os.cpu_count() or 1) // a.workers)
    up = time.perf_counter()
    options = dict(only_mask=a.type == "mask", model=a.model, threads=threads,
                   alpha_matting=a.alpha_matting, skip_existing=not a.overwrite,
                   overwrite=a.overwrite)
    if a.size:
        options["size"] = a.size
    chunks = [jobs[i:i + a.chunk] for i in range(0, len(jobs), a.chunk)]
    counts = {"done": 0, "skipped": 0, "failed": 0}
    try:
        futures = client.map(functools.partial(u2net.remove_many, **options), chunks, pure=False)
        for future in as_completed(futures):
            if future.status == "error":
                chunk = chunks[futures.index(future)]
                counts["failed"] += len(chunk)
                print("u2net: %s and %d more: %s" % (chunk[0][0], len(chunk) - 1,
                                                     future.exception()), file=sys.stderr)
                continue
            for src, _dst, result, message in future.result():
                counts[result] += 1
                if message:
                    print("u2net: %s" % message, file=sys.stderr)
    finally:
        client.close()
        if cluster:
            cluster.close()
    seconds = time.perf_counter() - up
    print("done %d, failed %d, skipped %d in %.2f s (%.2f images/s; cluster up in %.2f s)"
          % (counts["done"], counts["failed"], counts["skipped"], seconds,
             counts["done"] / seconds if seconds > 0 else 0.0, up - start))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
