/* Windows-only helpers (the shared entry points are in portmsg.h). */

/* The socket's provider: its catalog entry id (SO_PROTOCOL_INFOW). */
int pm_provider_id(pm_socket s, unsigned long *catalog_id, int *error);

/* WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER): which = 0 for WSARecvMsg,
 * 1 for WSASendMsg.  NULL with *error set if the provider lacks it. */
void *pm_extension(pm_socket s, int which, int *error);

/* WSAIoctl with a BOOL input (SIO_UDP_CONNRESET, SIO_UDP_NETRESET). */
int pm_ioctl_bool(pm_socket s, unsigned long code, int value, int *error);

/* WSAIoctl(SIO_TIMESTAMPING) with TIMESTAMPING_CONFIG.Flags = flags: 0, or -1 with *error set. */
int pm_timestamping(pm_socket s, unsigned long flags, int *error);

/* QueryPerformanceFrequency: the ticks per second of receive timestamps (and of time.perf_counter). */
long long pm_qpc_frequency(void);

/* The system's message for a Winsock error code, as the stdlib shows it. */
int pm_error_text(int code, wchar_t *buffer, int size);

/* Wine's version string, or NULL on Windows (ntdll's wine_get_version). */
const char *pm_wine_version(void);

/* One overlapped receive (or send) for an event loop's completion port: the
 * OVERLAPPED comes first, so an op's address is its OVERLAPPED's.  Its
 * memory, the pm_recv_args' buffers and the data must stay alive until the
 * completion is dequeued. */
typedef struct { ...; } pm_op;

/* Post a receive into a's buffers (event: NULL, so the completion goes to
 * the port).  0: complete already (a packet is still queued; WSAEMSGSIZE
 * counts as complete), WSA_IO_PENDING: in flight, else the WSA error and
 * nothing in flight. */
int pm_op_start(pm_op *op, pm_socket s, int flags, pm_recv_args *a, void *event);
/* Not complete yet (HasOverlappedIoCompleted). */
int pm_op_pending(const pm_op *op);
/* CancelIoEx: 0, or GetLastError() (ERROR_NOT_FOUND: already complete). */
int pm_op_cancel(pm_op *op, pm_socket s);
/* A complete receive reported into a, as pm_recv reports: records, or -(WSA error). */
int pm_op_finish(pm_op *op, pm_socket s, pm_recv_args *a);
/* Post a send (same return values as pm_op_start; fn: the provider's WSASendMsg). */
int pm_send_op_start(pm_op *op, void *fn, pm_socket s, const char *data, size_t datalen, const char *name, int namelen,
                     const char *control, size_t controllen, int flags);
/* A complete send: the bytes sent, or -(WSA error). */
long long pm_send_op_finish(pm_op *op, pm_socket s);
