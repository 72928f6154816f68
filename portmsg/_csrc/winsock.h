/* Windows prelude: the Winsock headers, pm_socket, the PM_CMSG_* macros
 * mapped to WSA_CMSG_*, names MinGW lacks, and the layout facts.  Compiled
 * before portmsg.h. */
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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef SOCKET pm_socket;
#define PM_ENOMEM WSA_NOT_ENOUGH_MEMORY  /* the code a failed allocation reports, as -(code) */
#define PM_EINVAL WSAEINVAL  /* the code an argument out of range reports */

/* The SDK declares IPPROTO_* (except IPPROTO_IP) as enumerators, which
 * #ifdef cannot see; a macro naming itself makes them visible to the
 * constants table while the value still comes from the header. */
#ifndef IPPROTO_IPV6
#define IPPROTO_IPV6 IPPROTO_IPV6
#endif
#ifndef IPPROTO_UDP
#define IPPROTO_UDP IPPROTO_UDP
#endif

/* Names MinGW 10 lacks, with the values of the Windows SDK headers (ws2ipdef.h, mstcpip.h). */
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
