"""rembg's remove() and new_session() over the library, and render() of a
matte: what code written for rembg calls, with the program's outputs.

The options rembg has map to the program's as u2net serve maps rembg's
parameters: only_mask is -t mask, alpha_matting with its thresholds and
erode size is --alpha-matting --fg-threshold --bg-threshold --erode-size,
post_process_mask is --morph open --alpha mask, and bgcolor puts the rgba
cutout over a colour of that alpha ("over", in integers as the server does).
"""
import atexit
import ctypes as C
import os
import sys
import threading

import numpy as np

from . import images
from . import library as L
from .session import (MASK_OPTION_NAMES, Session, find_model, mask_opts, pixels, _choice, _flag,
                      _int)

# rembg's own names stand for these
_RENDERED_BY_REMBG_NAMES = ("alpha_matting", "matting_fg_threshold", "matting_bg_threshold",
                            "erode_size")
REMOVE_OPTION_NAMES = tuple(n for n in MASK_OPTION_NAMES if n not in _RENDERED_BY_REMBG_NAMES)

_defaults = {}
_defaults_lock = threading.Lock()


def _reset_lock_after_fork():
    global _defaults_lock
    _defaults_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_after_fork)


def default_session(model=None, threads=0):
    """The process's Session for a model and thread count, made on first use
    and kept until the process ends (what remove() uses without a session,
    so that each call does not load the model again)."""
    key = (find_model(model), _int("threads", threads, 0, 1024))
    with _defaults_lock:
        s = _defaults.get(key)
        if s is None or s.closed:
            s = _defaults[key] = Session(key[0], key[1])
        return s


@atexit.register
def close_default_sessions():
    """Closes the sessions default_session() made."""
    with _defaults_lock:
        sessions = list(_defaults.values())
        _defaults.clear()
    for s in sessions:
        s.close()


def new_session(model_name=None, *, threads=0, device="cpu", gpu=0):
    """rembg's new_session(model_name): a Session (model_name None is u2netp)."""
    return Session(model_name, threads, device=device, gpu=gpu)


def _colour(bgcolor):
    if not isinstance(bgcolor, (tuple, list, np.ndarray)) or len(bgcolor) not in (3, 4):
        raise TypeError("bgcolor is %r: (R, G, B, A), each 0..255" % (bgcolor,))
    c = [_int("bgcolor", v, 0, 255) for v in bgcolor]
    return c + [255] * (4 - len(c))


def over_colour(rgba, colour):
    """An RGBA cutout (HxWx4 uint8) over a colour (R, G, B, A): alpha
    a + A (1 - a), colours (c a + C A (1 - a)) / that, in integers with
    rounding, as u2net serve does rembg's bgc."""
    px = rgba.astype(np.uint32)
    a = px[..., 3]
    below = colour[3] * (255 - a)
    total = a * 255 + below
    safe = np.maximum(total, 1)
    out = np.empty_like(rgba)
    for c in range(3):
        v = (px[..., c] * a * 255 + colour[c] * below + total // 2) // safe
        out[..., c] = np.where(total > 0, v, 0)
    out[..., 3] = (total + 127) // 255
    return out


def cutout(session, img, only_mask, opts, bgcolor):
    """The mask (HxW) or the rgba cutout (HxWx4, over bgcolor when given) of
    a u2net_image, as an array."""
    lib = session._lib
    m = session.matte_c(img, opts)
    out, err = L.Image(), L.Error()
    try:
        rc = lib.u2net_render(C.byref(img), C.byref(m), L.OUT["mask" if only_mask else "rgba"],
                              None, C.byref(out), C.byref(err))
    finally:
        lib.u2net_matte_free(C.byref(m))
    L.check(rc, err)
    try:
        a = images.array_of(out)
    finally:
        lib.u2net_image_free(C.byref(out))
    if bgcolor is not None and not only_mask:
        a = over_colour(a, bgcolor)
    return a


def rembg_mask_opts(alpha_matting, fg_threshold, bg_threshold, erode_size, post_process_mask,
                    options):
    """The u2net_mask_opts of rembg's options and this package's own."""
    for name in options:
        if name not in REMOVE_OPTION_NAMES:
            raise TypeError("unknown option %r (rembg's: alpha_matting, alpha_matting_foreground_"
                            "threshold, alpha_matting_background_threshold, alpha_matting_erode_"
                            "size, session, only_mask, post_process_mask, bgcolor, "
                            "force_return_bytes, putalpha; this package's: model, %s)"
                            % (name, ", ".join(REMOVE_OPTION_NAMES)))
    options = dict(options)
    if _flag("alpha_matting", alpha_matting):
        options.update(alpha_matting=True,
                       matting_fg_threshold=_int("alpha_matting_foreground_threshold",
                                                 fg_threshold, 0, 255),
                       matting_bg_threshold=_int("alpha_matting_background_threshold",
                                                 bg_threshold, 0, 255),
                       erode_size=_int("alpha_matting_erode_size", erode_size, 0))
    if _flag("post_process_mask", post_process_mask):
        if "morph" in options or "alpha_from_mask" in options:
            raise ValueError("post_process_mask is morph='open' with alpha_from_mask=True: give "
                             "either it or those")
        options.update(morph="open", alpha_from_mask=True)
    return mask_opts(options)


def remove(data, alpha_matting=False, alpha_matting_foreground_threshold=240,
           alpha_matting_background_threshold=10, alpha_matting_erode_size=10, session=None,
           only_mask=False, post_process_mask=False, bgcolor=None, force_return_bytes=False, *,
           model=None, putalpha=False, **options):
    """rembg's remove(): the subject of an image cut out, or its mask.

    data: encoded bytes (JPEG, PNG, BMP, TGA, GIF, PNM, decoded as the
    program does) -> PNG bytes; a PIL image -> a PIL image (RGBA, or L for
    the mask); a uint8 numpy array HxW or HxWxC (C 1..4) -> an array
    (HxWx4, or HxW for the mask). force_return_bytes gives PNG bytes for any.

    rembg's options, with its defaults: alpha_matting and its foreground
    and background thresholds and erode size; session (a Session, or None
    for the process's default one of `model`); only_mask (the binary mask);
    post_process_mask (a morphological opening, the alpha the mask);
    bgcolor (R, G, B, A) behind the cutout. putalpha is accepted and changes
    nothing: the cutout keeps the image's colours, as rembg's putalpha.
    This package's own: model (a name or a path; default u2netp, built in)
    and the matte's options (REMOVE_OPTION_NAMES: size, threshold, guided,
    ...). Errors are U2netError with the library's message, TypeError or
    ValueError for an argument of the wrong kind.
    """
    _flag("putalpha", putalpha)
    only_mask = _flag("only_mask", only_mask)
    opts = rembg_mask_opts(alpha_matting, alpha_matting_foreground_threshold,
                           alpha_matting_background_threshold, alpha_matting_erode_size,
                           post_process_mask, options)
    colour = _colour(bgcolor) if bgcolor is not None else None
    if session is None:
        session = default_session(model)
    elif not isinstance(session, Session):
        raise TypeError("session is a %s: a u2net.Session (u2net.new_session)"
                        % type(session).__name__)
    elif model is not None and find_model(model) != session.model_path:
        raise ValueError("model %r is not the session's (%s)" % (model, session.model_path))
    pil = sys.modules.get("PIL.Image")
    as_bytes = force_return_bytes or isinstance(data, (bytes, bytearray, memoryview))
    as_pil = not as_bytes and pil is not None and isinstance(data, pil.Image)
    img, owner = pixels(data)
    try:
        a = cutout(session, img, only_mask, opts, colour)
    finally:
        if owner is None:
            session._lib.u2net_image_free(C.byref(img))
    if as_bytes:
        return images.encode_c(images.c_image(a))
    return images.to_pil(a) if as_pil else a


def render(image, matte, type="rgba", background=(255, 255, 255), padding=0, highlight="dim"):
    """One of the program's outputs of an image (bytes, PIL or array) and its
    Matte (Session.matte; its maps may be changed): type prob, mask, rgba,
    rgb, composite (over background: an (R, G, B) colour, or an image
    scaled to cover), crop (padding), highlight (dim, gray or blur); an
    array, HxW or HxWxC."""
    if type not in L.OUT or type == "bbox":
        raise ValueError("type %r: one of %s" % (type, ", ".join(t for t in L.OUTPUT_TYPES
                                                                   if t != "bbox")))
    lib = L.get()
    img, owner = pixels(image)
    keep = [owner]  # the arrays the C structs point into
    decoded = [] if owner is not None else [img]  # images the library decoded, to free

    def plane(a, name, channels=1):
        shape = (img.height, img.width) + ((channels,) if channels > 1 else ())
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.shape != shape:
            raise ValueError("the matte's %s is not a uint8 array of shape %s" % (name, shape))
        a = np.ascontiguousarray(a)
        keep.append(a)
        return a.ctypes.data_as(C.POINTER(C.c_ubyte))

    try:
        m = L.Matte(img.width, img.height, plane(matte.prob, "prob"), plane(matte.alpha, "alpha"),
                    plane(matte.mask, "mask"))
        if matte.bbox is not None:
            m.bbox_x, m.bbox_y, m.bbox_w, m.bbox_h = (_int("bbox", v) for v in matte.bbox)
        m.area = _int("area", matte.area, 0, L.MAX_IMAGE_PIXELS)
        m.mean_prob = matte.mean_prob
        if matte.foreground is not None:
            m.foreground = plane(matte.foreground, "foreground", 3)
        ro = L.RenderOpts()
        lib.u2net_render_opts_default(C.byref(ro))
        ro.padding = _int("padding", padding, 0, L.MAX_IMAGE_SIDE)
        ro.highlight = _choice("highlight", highlight, L.HIGHLIGHT)
        if isinstance(background, (tuple, list)) and len(background) == 3:
            ro.background_rgb[:] = [_int("background", v, 0, 255) for v in background]
        else:
            bg, bg_owner = pixels(background)
            keep.append(bg_owner)
            if bg_owner is None:
                decoded.append(bg)
            ro.background = C.pointer(bg)
        out, err = L.Image(), L.Error()
        L.check(lib.u2net_render(C.byref(img), C.byref(m), L.OUT[type], C.byref(ro),
                                 C.byref(out), C.byref(err)), err)
        try:
            return images.array_of(out)
        finally:
            lib.u2net_image_free(C.byref(out))
    finally:
        for d in decoded:
            lib.u2net_image_free(C.byref(d))
