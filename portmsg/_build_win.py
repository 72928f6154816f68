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

import pathlib
import runpy

HERE = pathlib.Path(__file__).resolve().parent


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
/* Windows-only helpers (the shared entry points are in portmsg.h). */

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

/* WSABUF.len is a ULONG: a larger buffer is used up to 4 GiB - 1. */
static ULONG pm_ulong(size_t n) { return n > 0xFFFFFFFFu ? 0xFFFFFFFFu : (ULONG)n; }

/* The first buffer, then any further ones, as a WSABUF array. */
static WSABUF *pm_wsabufs(char *data, size_t datalen, const pm_buf *more, int nmore,
                          WSABUF *small, size_t *total)
{
    WSABUF *out = small;
    int i;
    if (nmore + 1 > PM_SMALL_BUFS) {
        out = malloc(sizeof(WSABUF) * (size_t)(nmore + 1));
        if (out == NULL)
            return NULL;
    }
    out[0].len = pm_ulong(datalen);
    out[0].buf = data;
    *total = out[0].len;
    for (i = 0; i < nmore; i++) {
        out[i + 1].len = pm_ulong(more[i].len);
        out[i + 1].buf = (char *)more[i].base;
        *total += out[i + 1].len;
    }
    return out;
}

int pm_recv(pm_socket s, int flags, pm_recv_args *a)
{
    LPFN_WSARECVMSG recv_fn = (LPFN_WSARECVMSG)a->fn;
    WSABUF small[PM_SMALL_BUFS];
    size_t total;
    WSABUF *wsabufs = pm_wsabufs(a->data, a->datalen, a->more, a->nmore, small, &total);
    WSAMSG msg;
    DWORD received = PM_UNSET;
    int rc, err = 0;

    if (wsabufs == NULL)
        return -WSA_NOT_ENOUGH_MEMORY;
    memset(&msg, 0, sizeof msg);
    msg.name = a->namelen > 0 ? (LPSOCKADDR)a->name : NULL;
    msg.namelen = a->namelen;
    msg.lpBuffers = wsabufs;
    msg.dwBufferCount = (ULONG)(a->nmore + 1);
    /* Never NULL with a length: Wine then loses the socket (PLATFORMS 6). */
    msg.Control.buf = a->controllen > 0 ? a->control : NULL;
    msg.Control.len = pm_ulong(a->controllen);
    msg.dwFlags = (DWORD)flags;
    rc = recv_fn(s, &msg, &received, NULL, NULL);
    if (rc == SOCKET_ERROR)
        err = WSAGetLastError();
    if (wsabufs != small)
        free(wsabufs);
    if (rc == SOCKET_ERROR) {
        if (err != WSAEMSGSIZE)
            return -err;
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
    if (msg.Control.buf == NULL)
        msg.Control.len = 0;
    else if (msg.Control.len > a->controllen)
        msg.Control.len = pm_ulong(a->controllen);
    /* Wine echoes input bits: keep only the documented output flags. */
    return pm_report(a, a->head, a->records, received == PM_UNSET ? 0 : (long long)received,
                     (int)(msg.dwFlags & PM_OUTPUT_FLAGS), a->name, msg.namelen > 0 ? msg.namelen : 0,
                     a->control, msg.Control.len);
}

static int pm_queued(pm_socket s)
{
    u_long pending = 0;
    return ioctlsocket(s, FIONREAD, &pending) != SOCKET_ERROR && pending > 0;
}

int pm_recv_batch(pm_socket s, int flags, int n, pm_recv_args *a)
{
    /* No recvmmsg: the first receive may block; after it, take only what is
     * already queued (FIONREAD), so the call never blocks for the rest. */
    return pm_recv_each(s, flags, flags, n, a, pm_queued);
}

int pm_send_batch(void *fn, pm_socket s, const pm_send_item *items, int n, int flags)
{
    /* No sendmmsg: one WSASendMsg per datagram. */
    return pm_send_each(fn, s, items, n, flags);
}

long long pm_send(void *fn, pm_socket s, const char *data, size_t datalen, const pm_buf *more, int nmore,
                  const char *name, int namelen, const char *control, size_t controllen, int flags)
{
    LPFN_WSASENDMSG send_fn = (LPFN_WSASENDMSG)fn;
    WSABUF small[PM_SMALL_BUFS];
    size_t total;
    WSABUF *wsabufs = pm_wsabufs((char *)data, datalen, more, nmore, small, &total);
    WSAMSG msg;
    DWORD sent = 0;
    int rc, err = 0;

    if (wsabufs == NULL)
        return -WSA_NOT_ENOUGH_MEMORY;
    memset(&msg, 0, sizeof msg);
    msg.name = namelen > 0 ? (LPSOCKADDR)name : NULL;
    msg.namelen = namelen > 0 ? namelen : 0;
    msg.lpBuffers = wsabufs;
    msg.dwBufferCount = (ULONG)(nmore + 1);
    msg.Control.buf = controllen > 0 ? (char *)control : NULL;
    msg.Control.len = pm_ulong(controllen);
    rc = send_fn(s, &msg, (DWORD)flags, &sent, NULL, NULL);
    if (rc == SOCKET_ERROR)
        err = WSAGetLastError();
    if (wsabufs != small)
        free(wsabufs);
    return rc == SOCKET_ERROR ? -(long long)err : (long long)sent;
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
    /* Drop the trailing CR LF, as CPython does. */
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

# cffi execs this script before the package can be imported: load the helper by path.
build_ffi = runpy.run_path(str(HERE / "_csrc" / "ffi_assemble.py"))["build_ffi"]

ffibuilder = build_ffi(
    "portmsg._winsock_cffi",
    prelude=PRELUDE,
    entry_cdef=ENTRY_CDEF,
    entry_source=ENTRY_SOURCE,
    libraries=["ws2_32"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
