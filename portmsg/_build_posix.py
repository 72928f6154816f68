"""cffi build script for the POSIX backend (portmsg._posix_cffi).

Out-of-line API mode against the system's own headers: recvmsg, sendmsg and
recvmmsg (where the C library has it), with the control-buffer walk done in C
in the same call.  Shared declarations live in _csrc/.
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
#define _GNU_SOURCE 1
#define __APPLE_USE_RFC_3542 1
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <time.h>

typedef int pm_socket;

#define PM_CMSGHDR struct cmsghdr
#define PM_CMSG_DATA(c) CMSG_DATA(c)
#define PM_CMSG_SPACE(n) CMSG_SPACE(n)
#define PM_CMSG_LEN(n) CMSG_LEN(n)

#define PM_SIZEOF_SOCKADDR_STORAGE sizeof(struct sockaddr_storage)
#define PM_SA_FAMILY_OFFSET offsetof(struct sockaddr, sa_family)
#define PM_SA_FAMILY_SIZE sizeof(((struct sockaddr *)0)->sa_family)
#define PM_SUN_PATH_OFFSET offsetof(struct sockaddr_un, sun_path)
#define PM_SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)
#ifdef IP_PKTINFO
#define PM_IN_PKTINFO_SIZE sizeof(struct in_pktinfo)
#define PM_IN_PKTINFO_ADDR_OFFSET offsetof(struct in_pktinfo, ipi_addr)
#define PM_IN_PKTINFO_IFINDEX_OFFSET offsetof(struct in_pktinfo, ipi_ifindex)
#define PM_IN_PKTINFO_IFINDEX_SIZE sizeof(((struct in_pktinfo *)0)->ipi_ifindex)
#define PM_IN_PKTINFO_SPEC_DST_OFFSET offsetof(struct in_pktinfo, ipi_spec_dst)
#endif
#ifdef IPV6_PKTINFO
#define PM_IN6_PKTINFO_SIZE sizeof(struct in6_pktinfo)
#define PM_IN6_PKTINFO_ADDR_OFFSET offsetof(struct in6_pktinfo, ipi6_addr)
#define PM_IN6_PKTINFO_IFINDEX_OFFSET offsetof(struct in6_pktinfo, ipi6_ifindex)
#define PM_IN6_PKTINFO_IFINDEX_SIZE sizeof(((struct in6_pktinfo *)0)->ipi6_ifindex)
#endif
#define PM_TIMEVAL_SIZE sizeof(struct timeval)
#define PM_TIMEVAL_USEC_OFFSET offsetof(struct timeval, tv_usec)
#define PM_TIMEVAL_USEC_SIZE sizeof(((struct timeval *)0)->tv_usec)
#define PM_TIMESPEC_SIZE sizeof(struct timespec)
#define PM_TIMESPEC_NSEC_OFFSET offsetof(struct timespec, tv_nsec)
#define PM_TIMESPEC_NSEC_SIZE sizeof(((struct timespec *)0)->tv_nsec)
#define PM_SIZEOF_TIME_T sizeof(time_t)
#ifdef SCM_CREDENTIALS
#define PM_UCRED_SIZE sizeof(struct ucred)
#endif
#define PM_CMSG_LEN_SIZE sizeof(((struct cmsghdr *)0)->cmsg_len)
"""

ENTRY_CDEF = r"""
/* recvmsg() into bufs, then walk the control data: one call per datagram.
 * Returns 0, or -1 with result->error = errno. */
int pm_recvmsg(pm_socket fd, const pm_buf *bufs, int nbufs,
               void *name, int namelen, unsigned char *control, size_t controllen,
               int flags, pm_record *records, int maxrecords, pm_result *result);

/* sendmsg(); returns the bytes sent, or -1 with *error = errno. */
long long pm_sendmsg(pm_socket fd, const pm_buf *bufs, int nbufs,
                     const void *name, int namelen,
                     const unsigned char *control, size_t controllen,
                     int flags, int *error);
"""

ENTRY_SOURCE = r"""
#define PM_SMALL_IOV 8

static struct iovec *pm_iov(const pm_buf *bufs, int nbufs, struct iovec *small)
{
    struct iovec *iov = small;
    int i;
    if (nbufs > PM_SMALL_IOV) {
        iov = malloc(sizeof(struct iovec) * (size_t)nbufs);
        if (iov == NULL)
            return NULL;
    }
    for (i = 0; i < nbufs; i++) {
        iov[i].iov_base = bufs[i].base;
        iov[i].iov_len = bufs[i].len;
    }
    return iov;
}

int pm_recvmsg(pm_socket fd, const pm_buf *bufs, int nbufs,
               void *name, int namelen, unsigned char *control, size_t controllen,
               int flags, pm_record *records, int maxrecords, pm_result *result)
{
    struct iovec small[PM_SMALL_IOV];
    struct iovec *iov = pm_iov(bufs, nbufs, small);
    struct msghdr msg;
    ssize_t n;

    memset(result, 0, sizeof *result);
    if (iov == NULL) {
        result->error = ENOMEM;
        return -1;
    }
    memset(&msg, 0, sizeof msg);
    msg.msg_name = namelen > 0 ? name : NULL;
    msg.msg_namelen = namelen > 0 ? (socklen_t)namelen : 0;
    msg.msg_iov = iov;
    msg.msg_iovlen = nbufs;
    msg.msg_control = controllen > 0 ? control : NULL;
    msg.msg_controllen = controllen;
    n = recvmsg(fd, &msg, flags);
    if (iov != small)
        free(iov);
    if (n < 0) {
        result->error = errno;
        return -1;
    }
    result->nbytes = n;
    result->flags = msg.msg_flags;
    result->namelen = (int)msg.msg_namelen;
    result->controllen = msg.msg_control != NULL ? (size_t)msg.msg_controllen : 0;
    result->nrecords = pm_walk(control, result->controllen, records, maxrecords);
    return 0;
}

long long pm_sendmsg(pm_socket fd, const pm_buf *bufs, int nbufs,
                     const void *name, int namelen,
                     const unsigned char *control, size_t controllen,
                     int flags, int *error)
{
    struct iovec small[PM_SMALL_IOV];
    struct iovec *iov = pm_iov(bufs, nbufs, small);
    struct msghdr msg;
    ssize_t n;

    if (iov == NULL) {
        *error = ENOMEM;
        return -1;
    }
    memset(&msg, 0, sizeof msg);
    msg.msg_name = namelen > 0 ? (void *)name : NULL;
    msg.msg_namelen = namelen > 0 ? (socklen_t)namelen : 0;
    msg.msg_iov = iov;
    msg.msg_iovlen = nbufs;
    msg.msg_control = controllen > 0 ? (void *)control : NULL;
    msg.msg_controllen = controllen;
    n = sendmsg(fd, &msg, flags);
    *error = n < 0 ? errno : 0;
    if (iov != small)
        free(iov);
    return n;
}
"""

ffibuilder = _load_assembler().build_ffi(
    "portmsg._posix_cffi",
    prelude=PRELUDE,
    entry_cdef=ENTRY_CDEF,
    entry_source=ENTRY_SOURCE,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
