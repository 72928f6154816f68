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

/* The first buffer, then any further ones, as a WSABUF array (with room for one more entry
 * after them: a receive's spare byte). */
static WSABUF *pm_wsabufs(char *data, size_t datalen, const pm_buf *more, int nmore,
                          WSABUF *small, size_t *total)
{
    WSABUF *out = small;
    int i;
    if (nmore + 2 > PM_SMALL_BUFS) {
        out = malloc(sizeof(WSABUF) * (size_t)(nmore + 2));
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

/* One overlapped WSARecvMsg: everything the kernel writes while it is in
 * flight.  The OVERLAPPED comes first, so the op's address is the
 * OVERLAPPED's.  Receives are overlapped even when the caller waits for
 * them: only then does the OS say how many bytes arrived when it fails the
 * call with WSAEMSGSIZE because the *control* buffer was too small (Wine
 * leaves the byte count of a non-overlapped call untouched, and the data
 * buffer would then be reported whole, stale bytes included). */
typedef struct pm_op {
    OVERLAPPED ov;
    WSAMSG msg;
    WSABUF small[PM_SMALL_BUFS];
    WSABUF *bufs;
    size_t total;   /* room in all data buffers */
    int posted;     /* WSAEMSGSIZE when the call failed so at once, else 0 */
    char spare;     /* one byte past the caller's buffers: a count above total means cut */
} pm_op;

#define PM_STATUS_PENDING ((ULONG_PTR)0x103)  /* STATUS_PENDING, as HasOverlappedIoCompleted reads it */
#define PM_UNKNOWN ((ULONG_PTR)-1)           /* InternalHigh before the OS writes a count */

const char *pm_wine_version(void);

/* Post one overlapped receive into a's buffers.  Returns 0 when it is
 * complete already (data, or WSAEMSGSIZE: op->posted), WSA_IO_PENDING when
 * it is in flight, else the WSA error (then nothing is in flight). */
int pm_op_start(pm_op *op, pm_socket s, int flags, pm_recv_args *a, void *event)
{
    LPFN_WSARECVMSG recv_fn = (LPFN_WSARECVMSG)a->fn;
    int err;

    op->bufs = pm_wsabufs(a->data, a->datalen, a->more, a->nmore, op->small, &op->total);
    if (op->bufs == NULL)
        return WSA_NOT_ENOUGH_MEMORY;
    memset(&op->ov, 0, sizeof op->ov);
    op->ov.Internal = PM_STATUS_PENDING;
    op->ov.InternalHigh = PM_UNKNOWN;
    op->ov.hEvent = (HANDLE)event;
    memset(&op->msg, 0, sizeof op->msg);
    op->msg.name = a->namelen > 0 ? (LPSOCKADDR)a->name : NULL;
    op->msg.namelen = a->namelen;
    /* One spare byte after the caller's buffers: a datagram that fills them exactly arrives
     * whole (count == total), a longer one puts a byte here (count > total), on Windows and Wine
     * alike, whatever flags the OS sets.  The spare byte is never handed out. */
    op->bufs[a->nmore + 1].len = 1;
    op->bufs[a->nmore + 1].buf = &op->spare;
    op->msg.lpBuffers = op->bufs;
    op->msg.dwBufferCount = (ULONG)(a->nmore + (a->spare ? 2 : 1));
    /* Never NULL with a length: Wine then loses the socket. */
    op->msg.Control.buf = a->controllen > 0 ? a->control : NULL;
    op->msg.Control.len = pm_ulong(a->controllen);
    op->msg.dwFlags = (DWORD)flags;
    op->posted = 0;
    /* No byte-count pointer with an OVERLAPPED: the count comes from the op. */
    if (recv_fn(s, &op->msg, NULL, &op->ov, NULL) == 0)
        return 0;
    err = WSAGetLastError();
    if (err == WSAEMSGSIZE) {
        op->posted = err;
        return 0;
    }
    if (err != WSA_IO_PENDING && op->bufs != op->small)
        free(op->bufs);
    return err;
}

/* Report a completed op into a: the records count, or -(WSA error). */
int pm_op_finish(pm_op *op, pm_socket s, pm_recv_args *a)
{
    DWORD received = 0, ignored = 0;
    ULONG_PTR count = op->ov.InternalHigh;
    int err = op->posted;

    if (!err && !WSAGetOverlappedResult(s, &op->ov, &received, FALSE, &ignored))
        err = WSAGetLastError();
    if (op->bufs != op->small)
        free(op->bufs);
    if (err && err != WSAEMSGSIZE)
        return -err;
    if (err == WSAEMSGSIZE) {
        /* Too large for the buffers (spare byte included), or the controls were cut: the OS
         * fails the call after filling what it could.  Windows sets MSG_TRUNC for cut data and
         * MSG_CTRUNC for cut controls; Wine sets only MSG_CTRUNC.  The spare byte decides:
         * a count above the caller's room means the data was cut, at or below it means whole. */
        if (count == PM_UNKNOWN) {
            /* Not overlapped (a socket without WSA_FLAG_OVERLAPPED): no count. */
            if (op->msg.dwFlags & MSG_CTRUNC)
                return -WSAEMSGSIZE;  /* the data's length is unknown: never report bytes it may not have */
            count = op->total + 1;  /* cut, as far as can be known */
        }
        received = (DWORD)count;
    }
    if ((size_t)received > op->total) {
        op->msg.dwFlags |= MSG_TRUNC;  /* the spare byte was reached: longer than the caller's buffers */
        received = (DWORD)op->total;
    }
    if (op->msg.Control.buf == NULL)
        op->msg.Control.len = 0;
    else if (op->msg.Control.len > a->controllen)
        op->msg.Control.len = pm_ulong(a->controllen);
    /* Wine echoes input bits: keep only the documented output flags. */
    return pm_report(a, a->head, a->records, (long long)received, (int)(op->msg.dwFlags & PM_OUTPUT_FLAGS), a->name,
                     op->msg.namelen > 0 ? op->msg.namelen : 0, a->control, op->msg.Control.len);
}

/* How long a blocking receive may wait: the socket's SO_RCVTIMEO, as a
 * non-overlapped call would honour it (overlapped calls ignore it). */
static DWORD pm_rcvtimeo(pm_socket s)
{
    DWORD ms = 0;
    int size = (int)sizeof ms;
    if (getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (char *)&ms, &size) == SOCKET_ERROR || ms == 0)
        return INFINITE;
    return ms;
}

int pm_recv(pm_socket s, int flags, pm_recv_args *a)
{
    pm_op op;
    HANDLE event = (HANDLE)a->event;
    int r;

    if (event == NULL)
        return -WSAEINVAL;
    /* The low bit keeps the completion off any I/O completion port the
     * socket is tied to (an asyncio proactor's): this receive is ours. */
    r = pm_op_start(&op, s, flags, a, (void *)((ULONG_PTR)event | 1));
    if (r == WSA_IO_PENDING) {
        DWORD limit = a->wait ? pm_rcvtimeo(s) : 0;
        int expired = 0;
        while (!HasOverlappedIoCompleted(&op.ov)) {
            if (WaitForSingleObject(event, limit) == WAIT_TIMEOUT) {
                /* Nothing came (in time): cancel, then wait for the op to end,
                 * since it lives on this stack.  A datagram that landed
                 * meanwhile is delivered, not lost. */
                CancelIoEx((HANDLE)s, &op.ov);
                limit = INFINITE;
                expired = 1;
            }
        }
        r = pm_op_finish(&op, s, a);
        if (expired && r == -WSA_OPERATION_ABORTED)
            return a->wait ? -WSAETIMEDOUT : -WSAEWOULDBLOCK;
        return r;
    }
    if (r != 0)
        return -r;
    return pm_op_finish(&op, s, a);
}

int pm_op_pending(const pm_op *op)
{
    return !HasOverlappedIoCompleted(&op->ov);
}

int pm_op_cancel(pm_op *op, pm_socket s)
{
    return CancelIoEx((HANDLE)s, &op->ov) ? 0 : (int)GetLastError();
}

int pm_send_op_start(pm_op *op, void *fn, pm_socket s, const char *data, size_t datalen, const char *name, int namelen,
                     const char *control, size_t controllen, int flags)
{
    LPFN_WSASENDMSG send_fn = (LPFN_WSASENDMSG)fn;
    int err;

    memset(op, 0, sizeof *op);
    op->ov.Internal = PM_STATUS_PENDING;
    op->small[0].buf = (char *)data;
    op->small[0].len = pm_ulong(datalen);
    op->bufs = op->small;
    op->total = op->small[0].len;
    op->msg.name = namelen > 0 ? (LPSOCKADDR)name : NULL;
    op->msg.namelen = namelen > 0 ? namelen : 0;
    op->msg.lpBuffers = op->bufs;
    op->msg.dwBufferCount = 1;
    op->msg.Control.buf = controllen > 0 ? (char *)control : NULL;
    op->msg.Control.len = pm_ulong(controllen);
    if (send_fn(s, &op->msg, (DWORD)flags, NULL, &op->ov, NULL) == 0)
        return 0;
    err = WSAGetLastError();
    return err;
}

long long pm_send_op_finish(pm_op *op, pm_socket s)
{
    DWORD sent = 0, ignored = 0;
    if (!WSAGetOverlappedResult(s, &op->ov, &sent, FALSE, &ignored))
        return -(long long)WSAGetLastError();
    return (long long)sent;
}

void *pm_event_new(void)
{
    /* Auto-reset: a completion that nobody waited for leaves it signalled, and
     * the wait loop above checks the op itself, so a stale signal is harmless. */
    return (void *)CreateEventW(NULL, FALSE, FALSE, NULL);
}

void pm_event_free(void *event)
{
    if (event != NULL)
        CloseHandle((HANDLE)event);
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

int pm_timestamping(pm_socket s, unsigned long flags, int *error)
{
    TIMESTAMPING_CONFIG config;
    DWORD bytes = 0;
    memset(&config, 0, sizeof config);
    config.Flags = (ULONG)flags;
    if (WSAIoctl(s, SIO_TIMESTAMPING, &config, sizeof config, NULL, 0, &bytes, NULL, NULL) == 0)
        return 0;
    *error = WSAGetLastError();
    return -1;
}

long long pm_qpc_frequency(void)
{
    LARGE_INTEGER frequency;
    QueryPerformanceFrequency(&frequency);
    return frequency.QuadPart;
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
