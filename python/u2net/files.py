"""Files by path, for a distributed engine's workers: remove_file() reads an
image, cuts it out with the process's Session and writes the result as the
program does (a temporary name renamed into place, never over an input,
--skip-existing and --overwrite); remove_many() does a list of them and
reports each file's result instead of stopping at the first bad one."""
import ctypes as C
import os

from . import images
from . import library as L
from .remove import _colour, cutout, default_session, rembg_mask_opts
from .session import _flag, _int

# What the program reads of a file before it looks at what it is, and the
# most it reads for an image of the largest size it takes (src/cmd_remove.c).
_SNIFF_BYTES = 64 * 1024
_BYTES_PER_PIXEL = 8
_METADATA_BYTES = 64 * 1024 * 1024


def read_image_file(path, max_pixels=L.DEFAULT_MAX_IMAGE_PIXELS):
    """A file's bytes, refused with U2netError naming it when it is empty,
    when its first bytes are no image's or when it is larger than an image
    of max_pixels can be."""
    limit = max_pixels * _BYTES_PER_PIXEL + _METADATA_BYTES
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
            if not head:
                raise L.U2netError("%s: empty file" % path, L.EFORMAT)
            if not L.get().u2net_image_sniff(head, len(head)):
                raise L.U2netError("%s: not an image in a format this library reads (JPEG, PNG, "
                                   "BMP, TGA, GIF, binary PNM): its first bytes are no such "
                                   "file's" % path, L.EFORMAT)
            rest = f.read(limit + 1 - len(head))
    except OSError as e:
        raise L.U2netError("%s: cannot read: %s" % (path, e.strerror or e), L.EIO) from None
    if len(head) + len(rest) > limit:
        raise L.U2netError("%s: too large for an image of at most %d pixels" % (path, max_pixels),
                           L.EFORMAT)
    return head + rest


def remove_file(src, dst, alpha_matting=False, alpha_matting_foreground_threshold=240,
                alpha_matting_background_threshold=10, alpha_matting_erode_size=10,
                only_mask=False, post_process_mask=False, bgcolor=None, *, model=None,
                threads=0, overwrite=False, skip_existing=False, jpeg_quality=95,
                max_pixels=L.DEFAULT_MAX_IMAGE_PIXELS, **options):
    """Cuts out the image at src into dst (.png, or .jpg/.jpeg for the mask)
    with remove()'s options, the process's Session of `model` and `threads`
    (default_session). Returns "done", or "skipped" when dst exists and
    skip_existing (or appears meanwhile); an existing dst is otherwise
    replaced only with overwrite, and never when it is src. Errors are
    U2netError naming the file."""
    src, dst = os.fspath(src), os.fspath(dst)
    only_mask = _flag("only_mask", only_mask)
    overwrite, skip_existing = _flag("overwrite", overwrite), _flag("skip_existing", skip_existing)
    ext = os.path.splitext(dst)[1].lower()
    if ext not in (".png", ".jpg", ".jpeg"):
        raise L.U2netError("%s: unknown image extension (use .png, .jpg or .jpeg)" % dst, L.EARG)
    jpeg = ext != ".png"
    if jpeg and not only_mask:
        raise L.U2netError("%s: JPEG cannot hold alpha (the cutout); use .png" % dst, L.EARG)
    opts = rembg_mask_opts(alpha_matting, alpha_matting_foreground_threshold,
                           alpha_matting_background_threshold, alpha_matting_erode_size,
                           post_process_mask, options)
    colour = _colour(bgcolor) if bgcolor is not None else None
    quality = _int("jpeg_quality", jpeg_quality, 1, 100)
    if os.path.lexists(dst):
        if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
            raise L.U2netError("%s: is the input; an input is never written over" % dst, L.EARG)
        if skip_existing:
            return "skipped"
        if not overwrite:
            raise L.U2netError("%s: exists (use overwrite=True)" % dst, L.EEXIST)
    session = default_session(model, threads)
    lib = session._lib
    data = read_image_file(src, _int("max_pixels", max_pixels, 1, 10 ** 12))
    try:
        img = images.decode_c(data, max_pixels)
    except L.U2netError as e:
        raise L.U2netError("%s: %s" % (src, e), e.code) from None
    try:
        a = cutout(session, img, only_mask, opts, colour)
    except L.U2netError as e:
        raise L.U2netError("%s: %s" % (src, e), e.code) from None
    finally:
        lib.u2net_image_free(C.byref(img))
    encoded = images.encode_c(images.c_image(a), L.FORMAT_JPEG if jpeg else L.FORMAT_PNG, quality)
    folder = os.path.dirname(dst)
    if folder:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise L.U2netError("%s: cannot create its folder %s: %s" % (dst, folder, e.strerror),
                               L.EIO) from None
    err = L.Error()
    rc = lib.u2net_write_file(dst.encode(), encoded, len(encoded), overwrite, C.byref(err))
    if rc == L.EEXIST and skip_existing:
        return "skipped"  # another process wrote it since this one looked: theirs stays
    if rc == L.EEXIST:
        raise L.U2netError("%s: exists (use overwrite=True)" % dst, L.EEXIST)
    L.check(rc, err)
    return "done"


def remove_many(jobs, **options):
    """remove_file(src, dst, **options) for each (src, dst) of jobs; a list of
    (src, dst, result, message): result "done", "skipped" or "failed" (the
    one-line message then). An option that is not remove_file's raises at
    once."""
    results = []
    for src, dst in jobs:
        try:
            results.append((src, dst, remove_file(src, dst, **options), ""))
        except L.U2netError as e:
            results.append((src, dst, "failed", str(e)))
    return results
