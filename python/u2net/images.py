"""Images between Python and the library: numpy arrays (uint8, HxW or
HxWxC, C 1..4), PIL images and encoded bytes to a u2net_image and back.

An array the library reads is never read with strides it does not have: a
view that is not C-contiguous is copied first; any other dtype or shape is
refused with a TypeError or ValueError saying what it is and what is taken.
"""
import ctypes as C

import numpy as np

from . import library as L

_PIL_MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
# PIL modes with an alpha channel that are not one of the four above
_PIL_ALPHA_MODES = ("PA", "La", "RGBa")
_EXIF_ORIENTATION = 0x0112


def checked_array(a, what="the image"):
    """`a` as a C-contiguous uint8 array of shape HxW or HxWxC (C 1..4), a
    copy when it is a strided view; TypeError or ValueError otherwise."""
    if not isinstance(a, np.ndarray):
        raise TypeError("%s is a %s, not a numpy array" % (what, type(a).__name__))
    if a.dtype != np.uint8:
        raise TypeError("%s has dtype %s: images are uint8 (convert with .astype(np.uint8) "
                        "after scaling to 0..255)" % (what, a.dtype))
    if not (a.ndim == 2 or (a.ndim == 3 and 1 <= a.shape[2] <= 4)):
        raise ValueError("%s has shape %s: images are HxW or HxWxC with C 1 (gray), 2 (gray "
                         "and alpha), 3 (RGB) or 4 (RGBA)" % (what, a.shape))
    h, w = a.shape[:2]
    if h < 1 or w < 1:
        raise ValueError("%s is empty (%dx%d)" % (what, w, h))
    if h > L.MAX_IMAGE_SIDE or w > L.MAX_IMAGE_SIDE or h * w > L.MAX_IMAGE_PIXELS:
        raise ValueError("%s is %dx%d: over the limit of %d a side, %d pixels"
                         % (what, w, h, L.MAX_IMAGE_SIDE, L.MAX_IMAGE_PIXELS))
    return np.ascontiguousarray(a)


def c_image(a):
    """A u2net_image over a checked array's memory; the array must outlive it."""
    channels = 1 if a.ndim == 2 else a.shape[2]
    return L.Image(a.shape[1], a.shape[0], channels, a.ctypes.data_as(C.POINTER(C.c_ubyte)))


def array_of(img):
    """A copy of a u2net_image's pixels: HxW for one channel, else HxWxC."""
    n = img.width * img.height * img.channels
    flat = np.ctypeslib.as_array(img.data, shape=(n,)).copy()
    if img.channels == 1:
        return flat.reshape(img.height, img.width)
    return flat.reshape(img.height, img.width, img.channels)


def from_pil(img):
    """A PIL image's pixels as an array: upright by its EXIF orientation (as
    rembg does), in L, LA, RGB or RGBA (other modes converted to RGBA when
    they have alpha, else RGB; bilevel to L)."""
    from PIL import ImageOps
    if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode not in _PIL_MODES:
        if img.mode == "1":
            img = img.convert("L")
        elif img.mode in _PIL_ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
            img = img.convert("RGBA")
        else:
            img = img.convert("RGB")
    return np.asarray(img)


def to_pil(a):
    """A PIL image of an array: L, LA, RGB or RGBA by its channels."""
    from PIL import Image
    return Image.fromarray(a)


def decode_c(data, max_pixels=0):
    """Decodes encoded bytes into a library-owned u2net_image (free it with
    u2net_image_free): JPEG, PNG, BMP, TGA, GIF, PNM, as the program does;
    max_pixels 0 is the library's default limit."""
    if not isinstance(data, bytes):
        data = memoryview(data).tobytes()
    if not data:
        raise L.U2netError("the image is empty (0 bytes)", L.EFORMAT)
    img, err = L.Image(), L.Error()
    L.check(L.get().u2net_image_decode(data, len(data), max_pixels, C.byref(img), C.byref(err)),
            err)
    return img


def decode(data, max_pixels=0):
    """Encoded bytes to an array, by the library's decoder (the program's)."""
    img = decode_c(data, max_pixels)
    try:
        return array_of(img)
    finally:
        L.get().u2net_image_free(C.byref(img))


def encode_c(img, fmt=L.FORMAT_PNG, quality=0):
    """A u2net_image encoded (PNG, or JPEG of 1 or 3 channels; quality 1..100,
    0 for 95) as the program encodes it."""
    out, n, err = C.c_void_p(), C.c_size_t(), L.Error()
    L.check(L.get().u2net_image_encode(C.byref(img), fmt, quality, C.byref(out), C.byref(n),
                                       C.byref(err)), err)
    try:
        return C.string_at(out, n.value)
    finally:
        L.free(out)


def encode(a, format="png", quality=0):
    """An array encoded as PNG or JPEG ("png", "jpg"/"jpeg") bytes."""
    fmt = {"png": L.FORMAT_PNG, "jpg": L.FORMAT_JPEG, "jpeg": L.FORMAT_JPEG}.get(format)
    if fmt is None:
        raise ValueError("format %r: png or jpg" % (format,))
    a = checked_array(a)
    return encode_c(c_image(a), fmt, quality)
