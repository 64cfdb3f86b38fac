"""Session: one loaded model and a pool of contexts for the threads that use
it (the library's rule: a model is shared, a context is one thread's at a
time), and the matte and the raw network through it."""
import collections
import ctypes as C
import math
import os
import sys
import threading
import warnings
import weakref

import numpy as np

from . import images
from . import library as L

BUILTIN_NAME = "u2netp"
_INT_MIN, _INT_MAX = -2 ** 31, 2 ** 31 - 1

# OpenMP (libgomp) cannot start threads in a process forked from one whose
# OpenMP threads ran: the child hangs in its first parallel run. So a fork
# child of such a process runs every context on one thread (which works),
# says so once, and keeps none of the parent's contexts. "threaded": a
# context of more than one CPU thread was made in this process.
_fork = {"threaded": False, "single_thread_child": False, "warned": False}
_sessions = weakref.WeakSet()


def _after_fork_in_child():
    if _fork["threaded"]:
        _fork["single_thread_child"] = True
    for s in list(_sessions):
        s._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

Matte = collections.namedtuple("Matte", "prob alpha mask foreground bbox area mean_prob")
Matte.__doc__ = """The matte of an image, maps at the image's size (HxW uint8):
prob the network's soft map, alpha the cutout's alpha after the options,
mask 0 or 255; foreground the estimated subject colours (HxWx3 uint8) or
None for the image's own; bbox (x, y, w, h) of the mask or None when it is
empty; area its pixels; mean_prob the mean of prob/255 inside the box."""


def model_folders():
    """The folders a model NAME is looked for in, in the program's order:
    $U2NET_WEIGHTS (':'-separated), weights/ and share/u2net beside the
    library's folder, rembg's folder ($U2NET_HOME, else
    $XDG_DATA_HOME/.u2net, else ~/.u2net)."""
    folders = [f for f in os.environ.get("U2NET_WEIGHTS", "").split(":") if f]
    parent = os.path.dirname(os.path.dirname(os.path.abspath(L.path())))
    folders += [os.path.join(parent, "weights"), os.path.join(parent, "share", "u2net")]
    home, data = os.environ.get("U2NET_HOME"), os.environ.get("XDG_DATA_HOME")
    if home:
        folders.append(home)
    elif data:
        folders.append(os.path.join(data, ".u2net"))
    elif os.environ.get("HOME"):
        folders.append(os.path.join(os.environ["HOME"], ".u2net"))
    return folders


def _rembg_models_folder():
    env = os.environ
    root = env.get("U2NET_HOME") or env.get("REMBG_HOME") or (
        os.path.join(env["XDG_DATA_HOME"], "rembg") if env.get("XDG_DATA_HOME") else
        os.path.join(env["HOME"], ".rembg") if env.get("HOME") else None)
    return os.path.join(root, "models") if root else None


def find_model(model=None):
    """What u2net_model_load takes for `model`, as the program's -m: a path
    (it has a '/' or ends in .u2nc or .onnx) as it is; u2netp, the built-in
    model; any other NAME as NAME.u2nc or NAME.onnx in model_folders(), then
    in rembg's own layout (~/.rembg/models/NAME/). None is u2netp."""
    if model is None:
        model = BUILTIN_NAME
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError("model is a %s: a name or a path" % type(model).__name__)
    model = os.fspath(model)
    if "/" in model or model.lower().endswith((".u2nc", ".onnx")) or model == L.BUILTIN_MODEL:
        return model
    if model == BUILTIN_NAME and L.get().u2net_has_builtin_model():
        return L.BUILTIN_MODEL
    folders = model_folders()
    rembg = _rembg_models_folder()
    if rembg:
        folders.append(os.path.join(rembg, model))
    for folder in folders:
        for ext in (".u2nc", ".onnx"):
            p = os.path.join(folder, model + ext)
            if os.path.isfile(p):
                return p
    raise L.U2netError("model '%s' not found: looked for %s.u2nc and %s.onnx in %s; give a path, "
                       "or put rembg's %s.onnx in $U2NET_HOME"
                       % (model, model, model, ", ".join(folders) or "no folder", model), L.EIO)


def _int(name, v, lo=_INT_MIN, hi=_INT_MAX):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError("%s is %r: an integer" % (name, v))
    if not lo <= v <= hi:
        raise ValueError("%s %d is not in %d..%d" % (name, v, lo, hi))
    return int(v)


def _float(name, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError("%s is %r: a number" % (name, v))
    if not math.isfinite(v):
        raise ValueError("%s is %r: a finite number" % (name, v))
    return float(v)


def _flag(name, v):
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and v in (0, 1)):
        return int(bool(v))
    raise TypeError("%s is %r: True or False" % (name, v))


def _choice(name, v, table):
    if v not in table:
        raise ValueError("%s is %r: one of %s" % (name, v, ", ".join(table)))
    return table[v]


def _triple(name, v):
    if not isinstance(v, (tuple, list, np.ndarray)) or len(v) != 3:
        raise TypeError("%s is %r: three numbers (R, G, B)" % (name, v))
    return [_float(name, x) for x in v]


def _size(v):
    """(width, height) of the `size` option: N or (W, H)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise TypeError("size is %r: N or (width, height)" % (v,))
        return _int("size", v[0], 1, 8192), _int("size", v[1], 1, 8192)
    n = _int("size", v, 1, 8192)
    return n, n


# The matte's options: the fields of u2net_mask_opts, by name (engine/u2net.h).
MASK_OPTIONS = {
    "resize": lambda v: ("resize", _choice("resize", v, L.RESIZE)),
    "threshold": lambda v: ("threshold", _float("threshold", v)),
    "refine": lambda v: ("refine", _flag("refine", v)),
    "fg_threshold": lambda v: ("fg_threshold", _int("fg_threshold", v, 0, 255)),
    "bg_threshold": lambda v: ("bg_threshold", _int("bg_threshold", v, 0, 255)),
    "morph": lambda v: ("morph", _choice("morph", v, L.MORPH)),
    "morph_radius": lambda v: ("morph_radius", _int("morph_radius", v)),
    "largest_component": lambda v: ("largest_component", _flag("largest_component", v)),
    "feather": lambda v: ("feather", _float("feather", v)),
    "alpha_from_mask": lambda v: ("alpha_from_mask", _flag("alpha_from_mask", v)),
    "guided": lambda v: ("guided", _flag("guided", v)),
    "guided_radius": lambda v: ("guided_radius", _int("guided_radius", v)),
    "guided_eps": lambda v: ("guided_eps", _float("guided_eps", v)),
    "alpha_matting": lambda v: ("alpha_matting", _flag("alpha_matting", v)),
    "matting_fg_threshold": lambda v: ("matting_fg_threshold",
                                       _int("matting_fg_threshold", v, 0, 255)),
    "matting_bg_threshold": lambda v: ("matting_bg_threshold",
                                       _int("matting_bg_threshold", v, 0, 255)),
    "erode_size": lambda v: ("erode_size", _int("erode_size", v)),
    "foreground": lambda v: ("foreground", _choice("foreground", v, L.FOREGROUND)),
}
MASK_OPTION_NAMES = ("size", "mean", "std") + tuple(MASK_OPTIONS)


def mask_opts(options):
    """A u2net_mask_opts of the library's defaults with `options` (a dict of
    MASK_OPTION_NAMES) set; TypeError for an unknown name, TypeError or
    ValueError for a value that is not of its kind. The library checks the
    ranges and says what is wrong with one."""
    o = L.MaskOpts()
    L.get().u2net_mask_opts_default(C.byref(o))
    for name, v in options.items():
        if name == "size":
            if v is not None:
                o.net_width, o.net_height = _size(v)
        elif name in ("mean", "std"):
            if v is not None:
                getattr(o, name)[:] = _triple(name, v)
        elif name in MASK_OPTIONS:
            field, value = MASK_OPTIONS[name](v)
            setattr(o, field, value)
        else:
            raise TypeError("unknown option %r (the matte's options: %s)"
                            % (name, ", ".join(MASK_OPTION_NAMES)))
    if (options.get("mean") is None) != (options.get("std") is None):
        raise ValueError("mean and std go together (a retrained model's normalisation)")
    return o


def pixels(data):
    """(u2net_image, owner): the image of bytes (decoded by the library; the
    caller frees it when owner is None), of a PIL image or of a numpy array
    (owner keeps its pixels alive)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return images.decode_c(data), None
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(data, pil.Image):
        a = images.checked_array(images.from_pil(data))
        return images.c_image(a), a
    if isinstance(data, np.ndarray):
        a = images.checked_array(data)
        return images.c_image(a), a
    raise TypeError("the image is a %s: bytes, a PIL image or a numpy array" % type(data).__name__)


def matte_arrays(m):
    """A Matte of copies of a u2net_matte's maps."""
    h, w = m.height, m.width

    def plane(ptr, channels=1):
        a = np.ctypeslib.as_array(ptr, shape=(h * w * channels,)).copy()
        return a.reshape((h, w, channels) if channels > 1 else (h, w))
    return Matte(plane(m.prob), plane(m.alpha), plane(m.mask),
                 plane(m.foreground, 3) if m.foreground else None,
                 (m.bbox_x, m.bbox_y, m.bbox_w, m.bbox_h) if m.bbox_w > 0 and m.bbox_h > 0 else None,
                 int(m.area), float(m.mean_prob))


class Session:
    """One loaded model and the contexts of the threads that use it.

    Session(model=None, threads=0, device="cpu", gpu=0): model is a name
    (u2netp, the default and built in; u2net, isnet, ... looked for as the
    program's -m NAME is) or a model file (.u2nc or rembg's .onnx); threads
    the CPU threads of each run (0: all cores); device "cpu" or "cuda".

    Thread-safe: calls from many threads at once each take a context of
    their own from the session's pool (made when none is free, so there are
    as many as calls ever ran at once) and share the one model. close()
    (or leaving a `with` block) frees them; a call in progress keeps its
    context until it returns; any later call raises ValueError.
    """

    def __init__(self, model=None, threads=0, *, device="cpu", gpu=0):
        self._lib = L.get()
        self.model_path = find_model(model)
        self._ctx_opts = L.CtxOpts()
        self._lib.u2net_ctx_opts_default(C.byref(self._ctx_opts))
        self._ctx_opts.threads = _int("threads", threads, 0, 1024)
        self._ctx_opts.device = _choice("device", device, {"cpu": L.DEVICE_CPU,
                                                           "cuda": L.DEVICE_CUDA})
        self._ctx_opts.gpu = _int("gpu", gpu, 0)
        self._lock = threading.Lock()
        self._idle = []
        self._busy = 0
        self._closed = True
        self._model = None
        err = L.Error()
        model_ptr = self._lib.u2net_model_load(self.model_path.encode(), C.byref(err))
        if not model_ptr:
            L.check(err.code or L.EFORMAT, err)
        self._model = model_ptr
        info = L.ModelInfo()
        self._lib.u2net_model_get_info(self._model, C.byref(info))
        p = info.processing
        self.info = {"name": info.name.decode(), "architecture": info.architecture.decode(),
                     "format_version": info.format_version, "params": info.params,
                     "outputs": info.outputs, "prediction": info.prediction,
                     "size": (p.width, p.height), "mean": tuple(p.mean), "std": tuple(p.std),
                     "file_bytes": info.file_bytes}
        self._closed = False
        _sessions.add(self)
        # the first context now: a device or thread count that cannot be had
        # fails here, not on the first call
        try:
            ctx = self._new_context()
        except BaseException:
            self.close()
            raise
        self.backend = self._lib.u2net_ctx_backend_name(ctx).decode()
        self._idle.append(ctx)

    def _new_context(self):
        if _fork["single_thread_child"] and self._ctx_opts.threads != 1:
            self._ctx_opts.threads = 1
            if not _fork["warned"]:
                _fork["warned"] = True
                warnings.warn("u2net: this process was forked from one that ran the library's "
                              "OpenMP threads, which cannot start again in it: its runs use one "
                              "thread (start processes with 'spawn' or 'forkserver' to keep "
                              "them)", RuntimeWarning)
        if self._ctx_opts.device == L.DEVICE_CPU and self._ctx_opts.threads != 1:
            _fork["threaded"] = True
        err = L.Error()
        ctx = self._lib.u2net_ctx_new_opts(self._model, C.byref(self._ctx_opts), C.byref(err))
        if not ctx:
            L.check(err.code or L.ENOMEM, err)
        return ctx

    def _reset_after_fork(self):
        # the threads that held the lock or contexts are not in this process
        self._lock = threading.Lock()
        self._busy = 0
        if _fork["single_thread_child"]:
            self._idle = []

    def _acquire(self):
        with self._lock:
            if self._closed:
                raise ValueError("the u2net.Session is closed")
            ctx = self._idle.pop() if self._idle else None
            self._busy += 1
        if ctx is None:
            try:
                ctx = self._new_context()
            except BaseException:
                self._release(None)
                raise
        return ctx

    def _release(self, ctx):
        free_model = None
        with self._lock:
            self._busy -= 1
            if not self._closed:
                if ctx:
                    self._idle.append(ctx)
                return
            if self._busy == 0:
                free_model, self._model = self._model, None
        if ctx:
            self._lib.u2net_ctx_free(ctx)
        if free_model:
            self._lib.u2net_model_free(free_model)

    @property
    def closed(self):
        return self._closed

    @property
    def threads(self):
        """The CPU threads a run uses (0 on a GPU)."""
        ctx = self._acquire()
        try:
            return self._lib.u2net_ctx_threads(ctx)
        finally:
            self._release(ctx)

    def close(self):
        """Frees the contexts and, once no call holds one, the model."""
        with self._lock:
            if self._closed and self._model is None:
                return
            self._closed = True
            idle, self._idle = self._idle, []
            free_model = self._model if self._busy == 0 else None
            if free_model:
                self._model = None
        for ctx in idle:
            self._lib.u2net_ctx_free(ctx)
        if free_model:
            self._lib.u2net_model_free(free_model)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_lib", None) is not None and getattr(self, "_lock", None) is not None:
            self.close()

    def __repr__(self):
        return "<u2net.Session %s (%s)%s>" % (self.info["name"] if self._model else "?",
                                             self.model_path, " closed" if self._closed else "")

    def matte_c(self, img, opts):
        """u2net_matte_image of a u2net_image: a u2net_matte the caller frees."""
        m, err = L.Matte(), L.Error()
        ctx = self._acquire()
        try:
            rc = self._lib.u2net_matte_image(ctx, C.byref(img), C.byref(opts), C.byref(m),
                                             C.byref(err))
        finally:
            self._release(ctx)
        L.check(rc, err)
        return m

    def matte(self, image, **options):
        """The matte of an image (bytes, a PIL image or a numpy array) with the
        matte's options (MASK_OPTION_NAMES: size, threshold, guided,
        alpha_matting, ...; engine/u2net.h's u2net_mask_opts), as a Matte."""
        opts = mask_opts(options)
        img, owner = pixels(image)
        try:
            m = self.matte_c(img, opts)
        finally:
            if owner is None:
                self._lib.u2net_image_free(C.byref(img))
        try:
            return matte_arrays(m)
        finally:
            self._lib.u2net_matte_free(C.byref(m))

    def predict(self, image):
        """rembg's session.predict: the soft map as a list of one PIL image
        (mode L) at the image's size."""
        return [images.to_pil(self.matte(image).prob)]

    def run(self, x):
        """The raw network on a normalised float32 image, 3xHxW (one) or
        Nx3xHxW (N of one size, 1..256): every output map, float32,
        (outputs)xHxW or Nx(outputs)xHxW; the prediction is
        info["prediction"]."""
        if not isinstance(x, np.ndarray):
            raise TypeError("the network's input is a %s, not a numpy array" % type(x).__name__)
        if x.dtype != np.float32:
            raise TypeError("the network's input has dtype %s: float32 (x.astype(np.float32))"
                            % x.dtype)
        one = x.ndim == 3
        if not (x.ndim in (3, 4) and x.shape[-3] == 3) or 0 in x.shape:
            raise ValueError("the network's input has shape %s: 3xHxW or Nx3xHxW" % (x.shape,))
        batch = x if not one else x[None]
        n, _, h, w = batch.shape
        if n > L.MAX_BATCH:
            raise ValueError("a batch of %d: at most %d images a run" % (n, L.MAX_BATCH))
        batch = np.ascontiguousarray(batch)
        outputs = self.info["outputs"]
        y = np.empty((n, outputs, h, w), np.float32)
        err = L.Error()
        ctx = self._acquire()
        try:
            L.check(self._lib.u2net_run_batch(ctx, batch.ctypes.data, n, h, w, C.byref(err)), err)
            for i in range(n):
                for k in range(outputs):
                    p = self._lib.u2net_output_batch(ctx, i, k)
                    y[i, k] = np.ctypeslib.as_array(p, shape=(h, w))
        finally:
            self._release(ctx)
        return y[0] if one else y
