/* Declarations shared by both backends: this file is the cffi cdef that
 * _build_posix.py and _build_win.py both load.  Every number comes from the
 * platform's headers at compile time; nothing here is a guess. */

/* The native socket handle: int on POSIX, SOCKET (UINT_PTR) on Windows. */
typedef int... pm_socket;

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

/* A receive reports into a flat array of long long, read from Python with
 * one ffi.unpack: a header of PM_HEADER values
 *   [nbytes, flags, namelen, controllen, nrecords]
 * then one record of PM_RECORD values per control message
 *   [level, type, offset, length]
 * whose payload is control[offset : offset + length].  The walker
 * guarantees offset + length <= controllen. */
#define PM_HEADER 5
#define PM_RECORD 4

/* Walk a control buffer; write at most maxrecords records; return how many. */
int pm_walk(const char *control, size_t controllen, long long *records, int maxrecords);

/* Lay out n control messages (records as above, payloads taken from
 * payload[offset : offset + length]) into control; return the bytes used,
 * or 0 if they do not fit. */
size_t pm_encode(const long long *records, int n, const char *payload, char *control, size_t controllen);

size_t pm_cmsg_len(size_t length);
size_t pm_cmsg_space(size_t length);

/* The table of constants this platform has (see constants.txt). */
const pm_constant *pm_constants(int *count);

/* Receive one datagram into data[0:datalen] (then into the `more` buffers),
 * its sender into name, its control data into control, and walk it.
 * fn is the provider's WSARecvMsg on Windows, ignored (NULL) on POSIX.
 * Returns the number of records (>= 0), or -(errno / WSA error code). */
int pm_recv(void *fn, pm_socket s, char *data, size_t datalen, const pm_buf *more, int nmore,
            char *name, int namelen, char *control, size_t controllen, int flags,
            long long *out, int maxrecords);

/* Receive up to n datagrams: datagram i goes to data + i * dataslot,
 * name + i * nameslot, control + i * controlslot and reports at
 * out + i * (PM_HEADER + PM_RECORD * maxrecords).  Blocks (per the socket's
 * mode) for the first datagram only.  Linux: one recvmmsg call
 * (MSG_WAITFORONE); elsewhere a loop.  Returns the count (>= 1) or
 * -(error code) when not even one datagram could be had. */
int pm_recv_batch(void *fn, pm_socket s, char *data, size_t dataslot, char *name, int nameslot,
                  char *control, size_t controlslot, int n, int flags, long long *out, int maxrecords);

/* Send data[0:datalen] then the `more` buffers; fn is the provider's
 * WSASendMsg on Windows, ignored on POSIX.  Returns the bytes sent, or
 * -(error code). */
long long pm_send(void *fn, pm_socket s, const char *data, size_t datalen, const pm_buf *more, int nmore,
                  const char *name, int namelen, const char *control, size_t controllen, int flags);
