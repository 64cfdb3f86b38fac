"""The C library, libu2net.so, through ctypes: where it is found, mirrors of
the structs of engine/u2net.h this package uses, and the calls' prototypes.

The library is found, in this order:
  1. $U2NET_LIBRARY, the path of a libu2net.so (an error when it is set
     and cannot be loaded: no fallback hides a wrong path);
  2. libu2net.so in this package's folder (`make python` puts a copy there
     before `pip install ./python`, so that the installed package carries it);
  3. build/libu2net.so of the source tree, when the package is imported
     from python/ of a built checkout (PYTHONPATH=python);
  4. the system's, by the dynamic loader's search (`make install` puts it in
     PREFIX/lib: run ldconfig, or set LD_LIBRARY_PATH, for the loader to see it).

The mirrors must match the header field for field: tests/test_python.py
compiles a C program against engine/u2net.h and compares every size and
offset with these.
"""
import ctypes as C
import os
import threading

# What the library writes when it says nothing more.
_ERROR_MESSAGE_BYTES = 512

# engine/u2net.h's error codes.
OK, EIO, EFORMAT, ECHECKSUM, EARG, ENOMEM, EEXIST, EDEVICE, ECANCELED = range(9)
ERROR_NAMES = {EIO: "EIO", EFORMAT: "EFORMAT", ECHECKSUM: "ECHECKSUM", EARG: "EARG",
               ENOMEM: "ENOMEM", EEXIST: "EEXIST", EDEVICE: "EDEVICE", ECANCELED: "ECANCELED"}

DEVICE_CPU, DEVICE_CUDA = 0, 1
FORMAT_PNG, FORMAT_JPEG = 0, 1
OUTPUT_TYPES = ("prob", "mask", "rgba", "rgb", "composite", "crop", "bbox", "highlight")
OUT = {name: k for k, name in enumerate(OUTPUT_TYPES)}
MORPH = {"none": 0, "open": 1, "close": 2, "open-close": 3}
RESIZE = {"bilinear": 0, "lanczos": 1}
FOREGROUND = {"auto": 0, "original": 1, "estimate": 2}
HIGHLIGHT = {"dim": 0, "gray": 1, "blur": 2}
BUILTIN_MODEL = "builtin:u2netp"
DEFAULT_MAX_IMAGE_PIXELS = 100000000
MAX_IMAGE_SIDE = 65535
MAX_IMAGE_PIXELS = 2147483648
MAX_BATCH = 256


class U2netError(Exception):
    """An error of the library: its one-line message, and `code`, one of
    the U2NET_E* codes of engine/u2net.h (EIO, EFORMAT, EARG, ENOMEM, ...)."""

    def __init__(self, message, code=EARG):
        super().__init__(message)
        self.code = code

    @property
    def code_name(self):
        return ERROR_NAMES.get(self.code, str(self.code))


class LibraryNotFound(U2netError, OSError):
    """No libu2net.so could be loaded; the message says where it looked."""

    def __init__(self, message):
        U2netError.__init__(self, message, EIO)


class Error(C.Structure):
    _fields_ = [("code", C.c_int), ("msg", C.c_char * _ERROR_MESSAGE_BYTES)]


class Image(C.Structure):
    _fields_ = [("width", C.c_int), ("height", C.c_int), ("channels", C.c_int),
                ("data", C.POINTER(C.c_ubyte))]


class CtxOpts(C.Structure):
    _fields_ = [("device", C.c_int), ("threads", C.c_int), ("reference", C.c_int),
                ("isa", C.c_int), ("gpu", C.c_int), ("fast", C.c_int)]


class Processing(C.Structure):
    _fields_ = [("width", C.c_int), ("height", C.c_int), ("mean", C.c_float * 3),
                ("std", C.c_float * 3), ("scale", C.c_int), ("normalise", C.c_int),
                ("resize_back", C.c_int)]


class ModelInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("architecture", C.c_char_p),
                ("format_version", C.c_int), ("params", C.c_size_t), ("outputs", C.c_int),
                ("prediction", C.c_int), ("processing", Processing), ("file_bytes", C.c_size_t)]


class MaskOpts(C.Structure):
    _fields_ = [("net_width", C.c_int), ("net_height", C.c_int), ("mean", C.c_float * 3),
                ("std", C.c_float * 3), ("resize", C.c_int),
                ("threshold", C.c_float), ("refine", C.c_int), ("fg_threshold", C.c_int),
                ("bg_threshold", C.c_int), ("morph", C.c_int), ("morph_radius", C.c_int),
                ("largest_component", C.c_int), ("feather", C.c_float),
                ("alpha_from_mask", C.c_int), ("guided", C.c_int), ("guided_radius", C.c_int),
                ("guided_eps", C.c_float), ("alpha_matting", C.c_int),
                ("matting_fg_threshold", C.c_int), ("matting_bg_threshold", C.c_int),
                ("erode_size", C.c_int), ("foreground", C.c_int)]


class Matte(C.Structure):
    _fields_ = [("width", C.c_int), ("height", C.c_int),
                ("prob", C.POINTER(C.c_ubyte)), ("alpha", C.POINTER(C.c_ubyte)),
                ("mask", C.POINTER(C.c_ubyte)),
                ("bbox_x", C.c_int), ("bbox_y", C.c_int), ("bbox_w", C.c_int),
                ("bbox_h", C.c_int), ("area", C.c_size_t), ("mean_prob", C.c_double),
                ("foreground", C.POINTER(C.c_ubyte))]


class RenderOpts(C.Structure):
    _fields_ = [("background_rgb", C.c_ubyte * 3), ("background", C.POINTER(Image)),
                ("padding", C.c_int), ("highlight", C.c_int)]


# The structs above by their names in engine/u2net.h, for the layout test.
MIRRORS = {"u2net_error": Error, "u2net_image": Image, "u2net_ctx_opts": CtxOpts,
           "u2net_processing": Processing, "u2net_model_info": ModelInfo,
           "u2net_mask_opts": MaskOpts, "u2net_matte": Matte, "u2net_render_opts": RenderOpts}

_P = C.c_void_p
_ERR = C.POINTER(Error)
_IMG = C.POINTER(Image)
# name: (result type, argument types)
_PROTOTYPES = {
    "u2net_model_load": (_P, [C.c_char_p, _ERR]),
    "u2net_has_builtin_model": (C.c_int, []),
    "u2net_model_free": (None, [_P]),
    "u2net_model_get_info": (None, [_P, C.POINTER(ModelInfo)]),
    "u2net_ctx_opts_default": (None, [C.POINTER(CtxOpts)]),
    "u2net_ctx_new_opts": (_P, [_P, C.POINTER(CtxOpts), _ERR]),
    "u2net_ctx_free": (None, [_P]),
    "u2net_ctx_backend_name": (C.c_char_p, [_P]),
    "u2net_ctx_threads": (C.c_int, [_P]),
    "u2net_run_batch": (C.c_int, [_P, _P, C.c_int, C.c_int, C.c_int, _ERR]),
    "u2net_output_batch": (C.POINTER(C.c_float), [_P, C.c_int, C.c_int]),
    "u2net_image_decode": (C.c_int, [_P, C.c_size_t, C.c_size_t, _IMG, _ERR]),
    "u2net_image_sniff": (C.c_int, [_P, C.c_size_t]),
    "u2net_image_free": (None, [_IMG]),
    "u2net_image_encode": (C.c_int, [_IMG, C.c_int, C.c_int, C.POINTER(_P),
                                     C.POINTER(C.c_size_t), _ERR]),
    "u2net_mask_opts_default": (None, [C.POINTER(MaskOpts)]),
    "u2net_matte_image": (C.c_int, [_P, _IMG, C.POINTER(MaskOpts), C.POINTER(Matte), _ERR]),
    "u2net_matte_free": (None, [C.POINTER(Matte)]),
    "u2net_render_opts_default": (None, [C.POINTER(RenderOpts)]),
    "u2net_render": (C.c_int, [_IMG, C.POINTER(Matte), C.c_int, C.POINTER(RenderOpts), _IMG,
                               _ERR]),
    "u2net_write_file": (C.c_int, [C.c_char_p, _P, C.c_size_t, C.c_int, _ERR]),
}

_lock = threading.Lock()
_loaded = {}


def _candidates():
    """(path or loader name, where it came from), in the search order."""
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libu2net.so"), "the package's folder"
    tree = os.path.dirname(os.path.dirname(here))
    if os.path.exists(os.path.join(tree, "engine", "u2net.h")):
        yield os.path.join(tree, "build", "libu2net.so"), "the source tree's build/"
    yield "libu2net.so", "the system's library path"


def _open(path):
    lib = C.CDLL(path)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, argtypes
    return lib


def _set_openmp_wait_policy():
    # OpenMP's default busy-waiting makes a run many times slower where other
    # work holds the cores; the u2net program sets the same for itself. It
    # counts only if libgomp is not loaded yet (it reads it when it starts).
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = "2000"


def get():
    """The loaded library (loaded on first use); raises LibraryNotFound."""
    lib = _loaded.get("lib")
    if lib is not None:
        return lib
    with _lock:
        if "lib" in _loaded:
            return _loaded["lib"]
        _set_openmp_wait_policy()
        env = os.environ.get("U2NET_LIBRARY")
        if env:
            try:
                lib = _open(env)
            except (OSError, AttributeError) as e:
                raise LibraryNotFound("U2NET_LIBRARY=%s cannot be loaded: %s" % (env, e)) from None
            _loaded["path"] = env
        else:
            tried = []
            for path, where in _candidates():
                if os.sep in path and not os.path.exists(path):
                    tried.append("%s (%s)" % (path, where))
                    continue
                try:
                    lib = _open(path)
                except (OSError, AttributeError) as e:
                    tried.append("%s (%s: %s)" % (path, where, e))
                    continue
                _loaded["path"] = path if os.sep in path else _loaded_path(path)
                break
            if lib is None:
                raise LibraryNotFound(
                    "libu2net.so not found: set U2NET_LIBRARY to its path, run `make python` "
                    "before `pip install ./python`, or `make install` and ldconfig; tried "
                    + "; ".join(tried))
        _loaded["lib"] = lib
        return lib


def _loaded_path(name):
    """Where the dynamic loader found `name`, from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if line.rstrip().endswith("/" + name):
                    return line.split(None, 5)[5].strip()
    except OSError:
        pass
    return name


def path():
    """The path of the library this process uses (loading it if need be)."""
    get()
    return _loaded["path"]


_libc = C.CDLL(None)
_libc.free.argtypes = [C.c_void_p]
_libc.free.restype = None


def free(pointer):
    """Frees memory the library gave with malloc (u2net_image_encode's)."""
    _libc.free(pointer)


def check(rc, err):
    """Raises U2netError with the library's message unless rc is 0."""
    if rc != 0:
        raise U2netError(err.msg.decode("utf-8", "replace") or "error %d" % rc, rc)
