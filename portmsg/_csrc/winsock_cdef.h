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
