/* Declarations shared by both backends: this file is the cffi cdef that
 * _build_posix.py and _build_win.py both load.  Every number comes from the
 * platform's headers at compile time; nothing here is a guess. */

/* The native socket handle: int on POSIX, SOCKET (UINT_PTR) on Windows. */
typedef int... pm_socket;

/* One control message found in a control buffer: payload at
 * control[offset : offset + length].  The walker guarantees that
 * offset + length <= the buffer's length. */
typedef struct {
    int level;
    int type;
    size_t offset;
    size_t length;
} pm_record;

/* One data buffer (iovec on POSIX, WSABUF on Windows). */
typedef struct {
    void *base;
    size_t len;
} pm_buf;

/* What one receive call reports besides the data. */
typedef struct {
    long long nbytes;      /* bytes received (the OS's count) */
    int flags;             /* native msg_flags / dwFlags */
    int error;             /* errno / WSAGetLastError(); 0 on success */
    int namelen;           /* bytes of the sender's address */
    size_t controllen;     /* bytes of control data written */
    int nrecords;          /* records filled in by the walk */
} pm_result;

/* A constant read from the platform's headers. */
typedef struct {
    const char *name;
    long long value;
} pm_constant;

/* Walk a control buffer; fill at most maxrecords records; return how many. */
int pm_walk(const unsigned char *control, size_t controllen,
            pm_record *records, int maxrecords);

/* Lay out n control messages (payloads at payload[offset:offset+length])
 * into control; return the bytes used, or 0 if they do not fit. */
size_t pm_encode(const pm_record *records, int n, const unsigned char *payload,
                 unsigned char *control, size_t controllen);

size_t pm_cmsg_len(size_t length);
size_t pm_cmsg_space(size_t length);

/* The table of constants this platform has (see constants.txt). */
const pm_constant *pm_constants(int *count);
