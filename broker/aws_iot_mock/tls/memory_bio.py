"""Give an empty ``ssl.MemoryBIO``'s buffer back to the allocator.

OpenSSL's memory BIO (``BIO_s_mem``) grows its buffer to hold the most it ever held at once and
never shrinks it: reading moves a read pointer, and the next write moves what is left to the
front of the same buffer (``mem_read`` / ``mem_buf_sync`` in OpenSSL's ``crypto/bio/bss_mem.c``,
https://github.com/openssl/openssl/blob/master/crypto/bio/bss_mem.c). The TLS door's outgoing
BIO receives the server's whole first handshake flight in one write (OpenSSL buffers the flight
and flushes it at once), so every connection would keep ~2.5 KB for its whole life (the flight
rounded up by ``BUF_MEM_grow_clean``'s 4/3 growth) although the BIO is empty between writes.

CPython offers no way to shrink it, so this module swaps in a new empty ``BUF_MEM`` through
OpenSSL's documented ``BIO_set_mem_buf`` control (``BIO_C_SET_BUF_MEM`` with ``BIO_CLOSE``: the
BIO frees its old buffer and owns the new one; https://docs.openssl.org/3.0/man3/BIO_s_mem/).
The call goes through ``ctypes`` into the libcrypto that CPython's ``_ssl`` module is linked
against, with the ``BIO *`` read from the ``MemoryBIO`` object (CPython's ``PySSLMemoryBIO``:
the object header, then the ``BIO *``). Where any of that cannot be confirmed (another Python
implementation, another object layout, LibreSSL, symbols missing), ``release_buffer`` does
nothing and says so; the BIO keeps working either way.

Only ever called from the event loop's thread, on BIOs that hold no bytes.
"""

from __future__ import annotations

import functools
import ssl
import sys
from collections.abc import Callable

__all__ = ["release_buffer"]

# From OpenSSL's <openssl/bio.h> (unchanged since 1.1.1; 3.x keeps the values).
_BIO_C_SET_BUF_MEM = 114
_BIO_CTRL_PENDING = 10
_BIO_TYPE_MEM = 1 | 0x0400
_BIO_CLOSE = 1


def release_buffer(bio: ssl.MemoryBIO) -> bool:
    """Free ``bio``'s buffer (kept at its largest size) if it holds no bytes.

    The BIO stays usable: the next write allocates what that write needs.

    Args:
        bio: a memory BIO owned by the caller (an ``SSLObject``'s incoming or outgoing BIO).

    Returns:
        True if the buffer was replaced by an empty one; False if ``bio`` holds bytes (nothing
        is changed, nothing is lost) or this interpreter's ``ssl`` module cannot be reached
        safely (see the module docstring).
    """
    if bio.pending:
        return False
    release = _load_releaser()
    return release is not None and release(bio)


# Resolved once, on first use (after the first handshake's flight is sent): importing ctypes
# costs ~10 ms, which start-up to the first handshake should not pay.
@functools.cache
def _load_releaser() -> Callable[[ssl.MemoryBIO], bool] | None:
    """Bind the libcrypto functions and check the object layout on a probe BIO."""
    if sys.implementation.name != "cpython" or not ssl.OPENSSL_VERSION.startswith("OpenSSL"):
        return None
    if ssl.OPENSSL_VERSION_INFO < (1, 1, 1):
        return None  # the read-pointer layout this relies on arrived in 1.1.1
    try:
        import _ssl  # noqa: PLC0415
        import ctypes  # noqa: PLC0415
    except ImportError:  # a Python built without ctypes (libffi)
        return None

    pointer = ctypes.sizeof(ctypes.c_void_p)
    header = object.__basicsize__
    # PySSLMemoryBIO is {PyObject_HEAD; BIO *bio; int eof_written;}: anything else, hands off.
    expected = header + pointer + max(ctypes.sizeof(ctypes.c_int), pointer)
    if ssl.MemoryBIO.__basicsize__ != expected:
        return None
    try:
        # dlopen of the extension module: dlsym then searches the libcrypto it is linked to.
        library = ctypes.CDLL(_ssl.__file__)
        bio_ctrl = library.BIO_ctrl
        bio_method_type = library.BIO_method_type
        buf_mem_new = library.BUF_MEM_new
    except (OSError, AttributeError):
        return None
    bio_ctrl.restype = ctypes.c_long
    bio_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    bio_method_type.restype = ctypes.c_int
    bio_method_type.argtypes = [ctypes.c_void_p]
    buf_mem_new.restype = ctypes.c_void_p
    buf_mem_new.argtypes = []

    def bio_pointer(bio: ssl.MemoryBIO) -> int | None:
        return ctypes.c_void_p.from_address(id(bio) + header).value

    probe = ssl.MemoryBIO()
    probe.write(b"probe")
    address = bio_pointer(probe)
    if (
        address is None
        or bio_method_type(address) != _BIO_TYPE_MEM
        or bio_ctrl(address, _BIO_CTRL_PENDING, 0, None) != len(b"probe")
    ):
        return None

    def release(bio: ssl.MemoryBIO) -> bool:
        address = bio_pointer(bio)
        if address is None:
            return False
        fresh = buf_mem_new()
        if not fresh:
            return False
        # BIO_set_mem_buf(bio, fresh, BIO_CLOSE): frees the old BUF_MEM, owns the new one.
        bio_ctrl(address, _BIO_C_SET_BUF_MEM, _BIO_CLOSE, fresh)
        return True

    return release
