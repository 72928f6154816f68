"""cffi build script for the Windows backend (portmsg._winsock_cffi).

Out-of-line API mode against winsock2.h, ws2tcpip.h, mswsock.h and mstcpip.h,
linked with ws2_32.  WSARecvMsg is not exported by ws2_32: its pointer comes
from WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER) on the socket itself, and
belongs to that socket's provider (see _winsock.py for the cache).  Shared
declarations live in _csrc/.

Under MSVC and MinGW alike: names MinGW 10 lacks are supplied from the
Windows SDK's documented values behind #ifndef, in the prelude below.
"""

from __future__ import annotations

import importlib.util
import pathlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types

HERE = pathlib.Path(__file__).resolve().parent


def _load_assembler() -> types.ModuleType:
    """Load _csrc/ffi_assemble.py by path: cffi execs this script before the package exists."""
    spec = importlib.util.spec_from_file_location("_pm_ffi_assemble", HERE / "_csrc" / "ffi_assemble.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PRELUDE = r"""
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
/* mingw's mstcpip.h shows SO_TIMESTAMP only from NTDDI_WIN10_FE on. */
#ifndef NTDDI_VERSION
#define NTDDI_VERSION 0x0A00000B
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <mstcpip.h>
#include <stddef.h>
#include <string.h>

typedef SOCKET pm_socket;

/* The SDK declares IPPROTO_* (except IPPROTO_IP) as enumerators, which
 * #ifdef cannot see; a macro naming itself makes them visible to the
 * constants table while the value still comes from the header. */
#ifndef IPPROTO_IPV6
#define IPPROTO_IPV6 IPPROTO_IPV6
#endif
#ifndef IPPROTO_UDP
#define IPPROTO_UDP IPPROTO_UDP
#endif

/* Names MinGW 10 lacks, with the Windows SDK's values (PLATFORMS.md 1.x, 7). */
#ifndef IP_RECVECN
#define IP_RECVECN 50
#endif
#ifndef IPV6_RECVECN
#define IPV6_RECVECN 50
#endif
#ifndef UDP_SEND_MSG_SIZE
#define UDP_SEND_MSG_SIZE 2
#endif
#ifndef UDP_RECV_MAX_COALESCED_SIZE
#define UDP_RECV_MAX_COALESCED_SIZE 3
#endif
#ifndef UDP_COALESCED_INFO
#define UDP_COALESCED_INFO 3
#endif
#ifndef SIO_UDP_NETRESET
#define SIO_UDP_NETRESET _WSAIOW(IOC_VENDOR, 15)
#endif
#ifndef MSG_ERRQUEUE
#define MSG_ERRQUEUE 0x1000
#endif

#define PM_CMSGHDR WSACMSGHDR
#define PM_CMSG_DATA(c) WSA_CMSG_DATA(c)
#define PM_CMSG_SPACE(n) WSA_CMSG_SPACE(n)
#define PM_CMSG_LEN(n) WSA_CMSG_LEN(n)

#define PM_SIZEOF_SOCKADDR_STORAGE sizeof(SOCKADDR_STORAGE)
#define PM_SA_FAMILY_OFFSET offsetof(struct sockaddr, sa_family)
#define PM_SA_FAMILY_SIZE sizeof(((struct sockaddr *)0)->sa_family)
#define PM_IN_PKTINFO_SIZE sizeof(IN_PKTINFO)
#define PM_IN_PKTINFO_ADDR_OFFSET offsetof(IN_PKTINFO, ipi_addr)
#define PM_IN_PKTINFO_IFINDEX_OFFSET offsetof(IN_PKTINFO, ipi_ifindex)
#define PM_IN_PKTINFO_IFINDEX_SIZE sizeof(((IN_PKTINFO *)0)->ipi_ifindex)
#define PM_IN6_PKTINFO_SIZE sizeof(IN6_PKTINFO)
#define PM_IN6_PKTINFO_ADDR_OFFSET offsetof(IN6_PKTINFO, ipi6_addr)
#define PM_IN6_PKTINFO_IFINDEX_OFFSET offsetof(IN6_PKTINFO, ipi6_ifindex)
#define PM_IN6_PKTINFO_IFINDEX_SIZE sizeof(((IN6_PKTINFO *)0)->ipi6_ifindex)
#define PM_CMSG_LEN_SIZE sizeof(((WSACMSGHDR *)0)->cmsg_len)
"""

ENTRY_CDEF = r"""
/* WSARecvMsg through the provider's pointer `fn`, then walk the control
 * data.  WSAEMSGSIZE (datagram larger than the buffers) is a success with
 * MSG_TRUNC set, as on POSIX.  Returns 0, or -1 with result->error set. */
int pm_wsarecvmsg(void *fn, pm_socket s, const pm_buf *bufs, int nbufs,
                  void *name, int namelen, unsigned char *control, size_t controllen,
                  int flags, pm_record *records, int maxrecords, pm_result *result);

/* WSASendMsg through the provider's pointer; bytes sent or -1 with *error. */
long long pm_wsasendmsg(void *fn, pm_socket s, const pm_buf *bufs, int nbufs,
                        const void *name, int namelen,
                        const unsigned char *control, size_t controllen,
                        int flags, int *error);

/* The socket's provider: its catalog entry id (SO_PROTOCOL_INFOW). */
int pm_provider_id(pm_socket s, unsigned long *catalog_id, int *error);

/* WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER): which = 0 for WSARecvMsg,
 * 1 for WSASendMsg.  NULL with *error set if the provider lacks it. */
void *pm_extension(pm_socket s, int which, int *error);

/* WSAIoctl with a BOOL input (SIO_UDP_CONNRESET, SIO_UDP_NETRESET). */
int pm_ioctl_bool(pm_socket s, unsigned long code, int value, int *error);

/* The system's message for a Winsock error code, as the stdlib shows it. */
int pm_error_text(int code, wchar_t *buffer, int size);

/* Wine's version string, or NULL on Windows (ntdll's wine_get_version). */
const char *pm_wine_version(void);
"""

ENTRY_SOURCE = r"""
#define PM_SMALL_BUFS 8
#define PM_UNSET ((DWORD)0xFFFFFFFFu)
#define PM_OUTPUT_FLAGS (MSG_TRUNC | MSG_CTRUNC | MSG_BCAST | MSG_MCAST)

static const GUID pm_wsarecvmsg_guid = WSAID_WSARECVMSG;
static const GUID pm_wsasendmsg_guid = WSAID_WSASENDMSG;

static WSABUF *pm_wsabufs(const pm_buf *bufs, int nbufs, WSABUF *small, size_t *total)
{
    WSABUF *out = small;
    int i;
    *total = 0;
    if (nbufs > PM_SMALL_BUFS) {
        out = malloc(sizeof(WSABUF) * (size_t)nbufs);
        if (out == NULL)
            return NULL;
    }
    for (i = 0; i < nbufs; i++) {
        /* WSABUF.len is a ULONG: larger buffers are used up to 4 GiB - 1. */
        out[i].len = bufs[i].len > 0xFFFFFFFFu ? 0xFFFFFFFFu : (ULONG)bufs[i].len;
        out[i].buf = (char *)bufs[i].base;
        *total += out[i].len;
    }
    return out;
}

int pm_wsarecvmsg(void *fn, pm_socket s, const pm_buf *bufs, int nbufs,
                  void *name, int namelen, unsigned char *control, size_t controllen,
                  int flags, pm_record *records, int maxrecords, pm_result *result)
{
    LPFN_WSARECVMSG recv_fn = (LPFN_WSARECVMSG)fn;
    WSABUF small[PM_SMALL_BUFS];
    size_t total;
    WSABUF *wsabufs = pm_wsabufs(bufs, nbufs, small, &total);
    WSAMSG msg;
    DWORD received = PM_UNSET;
    int rc;

    memset(result, 0, sizeof *result);
    if (wsabufs == NULL) {
        result->error = WSA_NOT_ENOUGH_MEMORY;
        return -1;
    }
    memset(&msg, 0, sizeof msg);
    msg.name = namelen > 0 ? (LPSOCKADDR)name : NULL;
    msg.namelen = namelen;
    msg.lpBuffers = wsabufs;
    msg.dwBufferCount = (ULONG)nbufs;
    /* Never NULL with a length: Wine then loses the socket (PLATFORMS 6). */
    msg.Control.buf = controllen > 0 ? (char *)control : NULL;
    msg.Control.len = controllen > 0xFFFFFFFFu ? 0xFFFFFFFFu : (ULONG)controllen;
    msg.dwFlags = (DWORD)flags;
    rc = recv_fn(s, &msg, &received, NULL, NULL);
    if (wsabufs != small)
        free(wsabufs);
    if (rc == SOCKET_ERROR) {
        int err = WSAGetLastError();
        if (err != WSAEMSGSIZE) {
            result->error = err;
            return -1;
        }
        /* Too large for the buffers: Windows fails the call after filling
         * them.  Wine leaves the byte count untouched; a cut datagram fills
         * every buffer, so the count is their total. */
        if (received == PM_UNSET || received > total)
            received = (DWORD)total;
        /* WSAEMSGSIZE without MSG_CTRUNC can only mean the data was cut
         * (Wine never sets MSG_TRUNC itself). */
        if (!(msg.dwFlags & MSG_CTRUNC))
            msg.dwFlags |= MSG_TRUNC;
    }
    result->nbytes = received == PM_UNSET ? 0 : (long long)received;
    /* Wine echoes input bits: keep only the documented output flags. */
    result->flags = (int)(msg.dwFlags & PM_OUTPUT_FLAGS);
    result->namelen = msg.namelen > 0 ? msg.namelen : 0;
    result->controllen = msg.Control.buf != NULL ? (size_t)msg.Control.len : 0;
    if (result->controllen > controllen)
        result->controllen = controllen;
    result->nrecords = pm_walk(control, result->controllen, records, maxrecords);
    return 0;
}

long long pm_wsasendmsg(void *fn, pm_socket s, const pm_buf *bufs, int nbufs,
                        const void *name, int namelen,
                        const unsigned char *control, size_t controllen,
                        int flags, int *error)
{
    LPFN_WSASENDMSG send_fn = (LPFN_WSASENDMSG)fn;
    WSABUF small[PM_SMALL_BUFS];
    size_t total;
    WSABUF *wsabufs = pm_wsabufs(bufs, nbufs, small, &total);
    WSAMSG msg;
    DWORD sent = 0;
    int rc;

    if (wsabufs == NULL) {
        *error = WSA_NOT_ENOUGH_MEMORY;
        return -1;
    }
    memset(&msg, 0, sizeof msg);
    msg.name = namelen > 0 ? (LPSOCKADDR)name : NULL;
    msg.namelen = namelen > 0 ? namelen : 0;
    msg.lpBuffers = wsabufs;
    msg.dwBufferCount = (ULONG)nbufs;
    msg.Control.buf = controllen > 0 ? (char *)control : NULL;
    msg.Control.len = (ULONG)controllen;
    rc = send_fn(s, &msg, (DWORD)flags, &sent, NULL, NULL);
    *error = rc == SOCKET_ERROR ? WSAGetLastError() : 0;
    if (wsabufs != small)
        free(wsabufs);
    return rc == SOCKET_ERROR ? -1 : (long long)sent;
}

int pm_provider_id(pm_socket s, unsigned long *catalog_id, int *error)
{
    WSAPROTOCOL_INFOW info;
    int size = (int)sizeof info;
    if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &size) == SOCKET_ERROR) {
        *error = WSAGetLastError();
        return -1;
    }
    *catalog_id = info.dwCatalogEntryId;
    *error = 0;
    return 0;
}

void *pm_extension(pm_socket s, int which, int *error)
{
    GUID guid = which == 0 ? pm_wsarecvmsg_guid : pm_wsasendmsg_guid;
    void *fn = NULL;
    DWORD bytes = 0;
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid,
                 &fn, sizeof fn, &bytes, NULL, NULL) == SOCKET_ERROR) {
        *error = WSAGetLastError();
        return NULL;
    }
    *error = fn == NULL ? WSAEOPNOTSUPP : 0;
    return fn;
}

int pm_ioctl_bool(pm_socket s, unsigned long code, int value, int *error)
{
    BOOL flag = value ? TRUE : FALSE;
    DWORD bytes = 0;
    if (WSAIoctl(s, (DWORD)code, &flag, sizeof flag, NULL, 0, &bytes, NULL, NULL) == SOCKET_ERROR) {
        *error = WSAGetLastError();
        return -1;
    }
    *error = 0;
    return 0;
}

int pm_error_text(int code, wchar_t *buffer, int size)
{
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                             NULL, (DWORD)code, MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT),
                             buffer, (DWORD)size, NULL);
    /* Drop the trailing CR LF and period spacing the way CPython does. */
    while (n > 0 && (buffer[n - 1] == L'\n' || buffer[n - 1] == L'\r' || buffer[n - 1] == L' '))
        n--;
    if (n < (DWORD)size)
        buffer[n] = 0;
    return (int)n;
}

const char *pm_wine_version(void)
{
    typedef const char *(*pm_version_fn)(void);
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    pm_version_fn fn = ntdll != NULL ? (pm_version_fn)(void *)GetProcAddress(ntdll, "wine_get_version") : NULL;
    return fn != NULL ? fn() : NULL;
}
"""

ffibuilder = _load_assembler().build_ffi(
    "portmsg._winsock_cffi",
    prelude=PRELUDE,
    entry_cdef=ENTRY_CDEF,
    entry_source=ENTRY_SOURCE,
    libraries=["ws2_32"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
