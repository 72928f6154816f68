/* Windows entry points (declared in portmsg.h and winsock_cdef.h):
 * WSARecvMsg / WSASendMsg through the provider's pointers, plus the
 * provider lookup, ioctls and error text. */
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
