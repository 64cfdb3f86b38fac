"""u2net: background removal by the u2net.c library (libu2net.so), through
ctypes, with rembg's remove() and new_session().

    import u2net
    cutout = u2net.remove(open("photo.jpg", "rb").read())    # PNG bytes
    with u2net.Session("u2netp", threads=2) as s:             # one model, any threads
        mask = u2net.remove(array, session=s, only_mask=True)  # numpy in, numpy out
        matte = s.matte(array, guided=True)                   # prob, alpha, mask, bbox
        maps = s.run(chw)                                     # the raw network

README.md (Python) says how the library is found and what differs from
rembg; u2net.files does files by path for distributed engines (Dask: the
README's "Many machines", python -m u2net.dask_folder).
"""
from .images import decode, encode
from .library import LibraryNotFound, U2netError
from .library import path as library_path
from .remove import (REMOVE_OPTION_NAMES, close_default_sessions, default_session, new_session,
                     remove, render)
from .session import MASK_OPTION_NAMES, Matte, Session, find_model
from .files import remove_file, remove_many

__version__ = "0.1.0"

__all__ = ["remove", "new_session", "Session", "Matte", "render", "decode", "encode",
           "remove_file", "remove_many", "default_session", "close_default_sessions",
           "find_model", "library_path", "U2netError", "LibraryNotFound", "MASK_OPTION_NAMES",
           "REMOVE_OPTION_NAMES"]
