/* Declarations shared by both backends: the cffi cdef that _build_posix.py
 * and _build_win.py both load, and the header the C sources are compiled
 * after.  Every number comes from the platform's headers at compile time;
 * nothing here is a guess.  pm_socket (int on POSIX, SOCKET on Windows) is
 * defined by each platform's prelude, and declared to cffi as `int...`. */

/* One data buffer (iovec on POSIX, WSABUF on Windows). */
typedef struct {
    void *base;
    size_t len;
} pm_buf;

/* A constant read from the platform's headers. */
typedef struct {
    const char *name;
    long long value;
} pm_constant;

/* A receive reports into two arrays of long long, read from Python with
 * ffi.unpack or a memoryview: per datagram a head of PM_HEADER values
 *   [nbytes, flags, namelen, controllen, nrecords, same]
 * and records of PM_RECORD values per control message
 *   [level, type, offset, length]
 * whose payload is control[offset : offset + length].  The walker
 * guarantees offset + length <= controllen.  `same` says which of the
 * datagram's sender address (PM_SAME_NAME) and control bytes
 * (PM_SAME_CONTROL) equal those of the datagram received before it with the
 * same pm_recv_args, so Python can reuse the objects it built then; so does
 * PM_SAME_FLAGS for its msg_flags. */
#define PM_HEADER 6
#define PM_RECORD 4
#define PM_SAME_NAME 1
#define PM_SAME_CONTROL 2
#define PM_SAME_FLAGS 4

/* Raised whenever an entry point or a struct here changes, so that a stale
 * compiled module is refused at import (portmsg/_report.py). */
#define PM_ABI_VERSION 7

/* Walk a control buffer; write at most maxrecords records; return how many. */
int pm_walk(const char *control, size_t controllen, long long *records, int maxrecords);

/* Lay out n control messages (records as above, payloads taken from
 * payload[offset : offset + length]) into control; return the bytes used,
 * or 0 if they do not fit. */
size_t pm_encode(const long long *records, int n, const char *payload, char *control, size_t controllen);

size_t pm_cmsg_len(size_t length);
size_t pm_cmsg_space(size_t length);

/* 1 when this module's wrappers keep the GIL around their calls (POSIX: see
 * posix.h), 0 when they release it (cffi's default; Windows, whose receive
 * waits in C). */
int pm_gil_kept(void);

/* The table of constants this platform has (see constants.txt). */
const pm_constant *pm_constants(int *count);

/* Where one receive (or a batch) puts what it gets.  Python keeps these in
 * free lists with the buffers preset (portmsg/_scratch.py), one per call in
 * progress, so a call passes three arguments, not sixteen. */
typedef struct {
    void *fn;             /* Windows: the provider's WSARecvMsg; POSIX: unused */
    char *data;           /* data buffer; a batch uses slot i at data + i * datalen */
    size_t datalen;
    const pm_buf *more;   /* further data buffers, after data (recvmsg_into) */
    int nmore;
    char *name;           /* sender's address; batch: name + i * namelen */
    int namelen;
    char *control;        /* control data; batch: control + i * controllen */
    size_t controllen;
    long long *head;      /* heads; batch: head + i * PM_HEADER */
    long long *records;   /* records; batch: records + i * PM_RECORD * maxrecords */
    int maxrecords;       /* records room per datagram */
    char *prev_name;      /* the last datagram's sender (room: namelen) */
    char *prev_control;   /* and control bytes (room: controllen) */
    long long prev_namelen;     /* -1: nothing to compare with */
    long long prev_controllen;  /* -1: nothing to compare with */
    long long prev_flags;       /* the last datagram's msg_flags */
    void *vectors;        /* recvmmsg: room for nvectors mmsghdr + iovec (PM_BATCH_VECTOR_SIZE each) */
    int nvectors;
    void *event;          /* Windows: this args' event for overlapped receives (pm_event_new) */
    int wait;             /* Windows: 1 to wait for a datagram (blocking socket), 0 to return at once */
    pm_socket fd;         /* pm_recv1: the socket and input flags, kept here while they stay the same */
    int flags;
    int spare;            /* Windows: 1 to receive a datagram into one spare byte past the buffers (exact
                           * truncation); 0 on a stream, where that byte would be taken from the stream */
} pm_recv_args;

/* Windows: a new event for pm_recv_args.event (NULL on failure, and on
 * POSIX, where receives need none); pm_event_free closes it. */
void *pm_event_new(void);
void pm_event_free(void *event);

/* Receive one datagram and walk its control data.  Returns the number of
 * records (>= 0), or -(errno / WSA error code). */
int pm_recv(pm_socket s, int flags, pm_recv_args *a);

/* pm_recv(a->fd, a->flags, a): one argument, the cheapest call cffi makes (the hot path of recv).
 * Returns nbytes (>= 0) when the datagram repeats the one before it in sender,
 * control bytes and msg_flags and was not cut (Python reuses that datagram's
 * objects and reads no head), PM_FRESH when Python must read the head, or
 * -(error code). */
#define PM_FRESH -1073741824
int pm_recv1(pm_recv_args *a);

/* pm_recv into data[0:datalen] (then a->more) instead of a->data, leaving a's
 * buffers as they were: a receive into the caller's own buffer. */
int pm_recv_into(pm_socket s, int flags, pm_recv_args *a, char *data, size_t datalen);

/* Receive up to n datagrams, blocking (per the socket's mode) for the first
 * only.  Linux: one recvmmsg call (MSG_WAITFORONE); elsewhere a loop.
 * Returns the count (>= 1) or -(error code) when not even one came. */
int pm_recv_batch(pm_socket s, int flags, int n, pm_recv_args *a);

/* A batch indexed for building its Messages with C iterators (pm_recv_indexed).
 * Two small tables persist from call to call: sender addresses (PM_PEER_SLOTS
 * slots of namelen bytes) and control sets (PM_CONTROL_SLOTS slots of
 * controllen bytes, keyed with the datagram's msg_flags too).  Per datagram the
 * call reports its slot in each (peer_of[i], control_of[i]); each slot it
 * (re)filled is listed in fresh[] as (kind, slot, datagram): kind 0 a sender,
 * 1 a control set, so Python decodes each new one once and keeps its objects
 * by slot.  A slot used by one call is never refilled in that call.  format
 * gets a struct format ("<n>s<gap>x...") that unpacks every payload from
 * the data slots in one call. */
#define PM_PEER_SLOTS 256
#define PM_CONTROL_SLOTS 64
#define PM_INDEX_COUNT 2047         /* the count (n <= PM_INDEX_COUNT), in the low bits of the result */
#define PM_INDEX_MIXED 2048         /* the tables could not hold this call: nothing was kept, decode by the heads */
#define PM_INDEX_PEERS 4096         /* not every datagram of this call came from one sender */
#define PM_INDEX_CONTROLS 8192      /* nor with one control set and msg_flags */
#define PM_INDEX_SAME_FORMAT 16384  /* format is the one of the call before (the same bytes) */
#define PM_INDEX_FRESH 32768        /* nfresh > 0 */
#define PM_INDEX_PEER_SHIFT 16      /* the last datagram's peer slot, in the 8 bits from here */
#define PM_INDEX_CONTROL_SHIFT 24   /* and its control slot, in the 6 bits from here */
#define PM_FORMAT_ROOM 48           /* format bytes per datagram */

typedef struct {
    pm_recv_args *args;
    char *peers;              /* PM_PEER_SLOTS * args->namelen */
    long long *peer_len;      /* -1: empty */
    int *peer_stamp;          /* the call that last used the slot */
    char *controls;           /* PM_CONTROL_SLOTS * args->controllen */
    long long *control_len;   /* -1: empty */
    long long *control_flags;
    int *control_stamp;
    long long *peer_of;       /* per datagram */
    long long *control_of;
    long long *fresh;         /* 3 per entry: room for 2 per datagram */
    int nfresh;
    char *format;             /* PM_FORMAT_ROOM per datagram */
    int formatlen;
    char *prev_format;        /* the last indexed call's format (room as format's) */
    int prev_formatlen;       /* -1: none to compare with */
    int stamp;                /* this call's number */
    int last_peer;            /* the previous datagram's slots (-1: none), reused while PM_SAME_* hold */
    int last_control;
    long long last_flags;
} pm_batch_index;

/* pm_recv_batch(s, flags, n, x->args), then index the datagrams in x.
 * Returns the count ORed with PM_INDEX_* bits, or -(error code).  Without
 * PM_INDEX_MIXED the result also holds the slots of the last datagram (of
 * every one, without PM_INDEX_PEERS / _CONTROLS) at PM_INDEX_PEER_SHIFT and
 * PM_INDEX_CONTROL_SHIFT; with it, the first head has no PM_SAME_NAME /
 * PM_SAME_CONTROL marks (the datagram before it was indexed, not decoded). */
int pm_recv_indexed(pm_socket s, int flags, int n, pm_batch_index *x);

/* Empty every slot of x (and forget its last format): the next call lists each as fresh. */
void pm_index_clear(pm_batch_index *x);

/* One datagram of a batch send. */
typedef struct {
    const char *data;
    size_t datalen;
    const char *name;
    int namelen;
    const char *control;
    size_t controllen;
} pm_send_item;

/* Send up to n datagrams: Linux one sendmmsg call, elsewhere a loop that
 * stops at the first failure.  fn as for pm_send.  Returns how many were
 * sent (>= 1), or -(error code) when the first one failed. */
int pm_send_batch(void *fn, pm_socket s, const pm_send_item *items, int n, int flags);

/* Send n datagrams laid end to end in three blobs: datagram i takes the next
 * lens[3i] bytes of datas, lens[3i+1] of names (its sockaddr; 0: connected)
 * and lens[3i+2] of controls (0: none).  One pm_send_batch call.  Returns
 * how many went, or -(error code) when the first one failed. */
int pm_send_packed(void *fn, pm_socket s, const char *datas, const char *names, const char *controls,
                   const long long *lens, int n);

/* Send data[0:datalen] then the `more` buffers; fn is the provider's
 * WSASendMsg on Windows, ignored on POSIX.  Returns the bytes sent, or
 * -(error code). */
long long pm_send(void *fn, pm_socket s, const char *data, size_t datalen, const pm_buf *more, int nmore,
                  const char *name, int namelen, const char *control, size_t controllen, int flags);
