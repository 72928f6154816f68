"""cffi build script for the POSIX backend (portmsg._posix_cffi).

Out-of-line API mode against the system's own headers: recvmsg, sendmsg and
recvmmsg (where the C library has it), with the control-buffer walk done in C
in the same call.  portmsg.h declares the entry points; this script only
implements them.  Shared declarations live in _csrc/.
"""

from __future__ import annotations

import pathlib
import runpy

HERE = pathlib.Path(__file__).resolve().parent


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

ENTRY_SOURCE = r"""
#define PM_SMALL_IOV 8

/* The first buffer, then any further ones, as an iovec array. */
static struct iovec *pm_iov(char *data, size_t datalen, const pm_buf *more, int nmore, struct iovec *small)
{
    struct iovec *iov = small;
    int i;
    if (nmore + 1 > PM_SMALL_IOV) {
        iov = malloc(sizeof(struct iovec) * (size_t)(nmore + 1));
        if (iov == NULL)
            return NULL;
    }
    iov[0].iov_base = data;
    iov[0].iov_len = datalen;
    for (i = 0; i < nmore; i++) {
        iov[i + 1].iov_base = more[i].base;
        iov[i + 1].iov_len = more[i].len;
    }
    return iov;
}

int pm_recv(pm_socket s, int flags, pm_recv_args *a)
{
    struct iovec small[PM_SMALL_IOV];
    struct iovec *iov = pm_iov(a->data, a->datalen, a->more, a->nmore, small);
    struct msghdr msg;
    ssize_t n;
    int err;

    if (iov == NULL)
        return -ENOMEM;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = a->namelen > 0 ? a->name : NULL;
    msg.msg_namelen = a->namelen > 0 ? (socklen_t)a->namelen : 0;
    msg.msg_iov = iov;
    msg.msg_iovlen = a->nmore + 1;
    msg.msg_control = a->controllen > 0 ? a->control : NULL;
    msg.msg_controllen = a->controllen;
    n = recvmsg(s, &msg, flags);
    err = errno;
    if (iov != small)
        free(iov);
    if (n < 0)
        return -err;
    return pm_report(a, a->head, a->records, n, msg.msg_flags, a->name, (int)msg.msg_namelen, a->control,
                     msg.msg_control != NULL ? (size_t)msg.msg_controllen : 0);
}

int pm_recv_batch(pm_socket s, int flags, int n, pm_recv_args *a)
{
#ifdef MSG_WAITFORONE
    /* One recvmmsg call: block for the first datagram, never for the rest. */
    const size_t stride = (size_t)PM_RECORD * (size_t)a->maxrecords;
    int i;
    struct mmsghdr *msgs = calloc((size_t)n, sizeof *msgs);
    struct iovec *iov = calloc((size_t)n, sizeof *iov);
    int got, err;

    if (msgs == NULL || iov == NULL) {
        free(msgs);
        free(iov);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        iov[i].iov_base = a->data + (size_t)i * a->datalen;
        iov[i].iov_len = a->datalen;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = a->namelen > 0 ? a->name + (size_t)i * (size_t)a->namelen : NULL;
        msgs[i].msg_hdr.msg_namelen = a->namelen > 0 ? (socklen_t)a->namelen : 0;
        msgs[i].msg_hdr.msg_control = a->controllen > 0 ? a->control + (size_t)i * a->controllen : NULL;
        msgs[i].msg_hdr.msg_controllen = a->controllen;
    }
    got = recvmmsg(s, msgs, (unsigned int)n, flags | MSG_WAITFORONE, NULL);
    err = errno;
    for (i = 0; i < got; i++) {
        struct msghdr *m = &msgs[i].msg_hdr;
        pm_report(a, a->head + (size_t)i * PM_HEADER, a->records + (size_t)i * stride, msgs[i].msg_len,
                  m->msg_flags, (char *)m->msg_name, (int)m->msg_namelen, (char *)m->msg_control,
                  m->msg_control != NULL ? (size_t)m->msg_controllen : 0);
    }
    free(msgs);
    free(iov);
    return got < 0 ? -err : got;
#else
    /* No recvmmsg: the first receive may block, the rest must not. */
    return pm_recv_each(s, flags, flags | MSG_DONTWAIT, n, a, NULL);
#endif
}

int pm_send_batch(void *fn, pm_socket s, const pm_send_item *items, int n, int flags)
{
#ifdef MSG_WAITFORONE
    /* sendmmsg exists wherever recvmmsg does on Linux. */
    int i;
    struct mmsghdr *msgs = calloc((size_t)n, sizeof *msgs);
    struct iovec *iov = calloc((size_t)n, sizeof *iov);
    int sent, err;

    (void)fn;
    if (msgs == NULL || iov == NULL) {
        free(msgs);
        free(iov);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        iov[i].iov_base = (void *)items[i].data;
        iov[i].iov_len = items[i].datalen;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = items[i].namelen > 0 ? (void *)items[i].name : NULL;
        msgs[i].msg_hdr.msg_namelen = items[i].namelen > 0 ? (socklen_t)items[i].namelen : 0;
        msgs[i].msg_hdr.msg_control = items[i].controllen > 0 ? (void *)items[i].control : NULL;
        msgs[i].msg_hdr.msg_controllen = items[i].controllen;
    }
    sent = sendmmsg(s, msgs, (unsigned int)n, flags);
    err = errno;
    free(msgs);
    free(iov);
    return sent < 0 ? -err : sent;
#else
    return pm_send_each(fn, s, items, n, flags);
#endif
}

long long pm_send(void *fn, pm_socket s, const char *data, size_t datalen, const pm_buf *more, int nmore,
                  const char *name, int namelen, const char *control, size_t controllen, int flags)
{
    struct iovec small[PM_SMALL_IOV];
    struct iovec *iov = pm_iov((char *)data, datalen, more, nmore, small);
    struct msghdr msg;
    ssize_t n;
    int err;

    (void)fn;  /* the Windows entry takes the provider's WSASendMsg here */
    if (iov == NULL)
        return -ENOMEM;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = namelen > 0 ? (void *)name : NULL;
    msg.msg_namelen = namelen > 0 ? (socklen_t)namelen : 0;
    msg.msg_iov = iov;
    msg.msg_iovlen = nmore + 1;
    msg.msg_control = controllen > 0 ? (void *)control : NULL;
    msg.msg_controllen = controllen;
    n = sendmsg(s, &msg, flags);
    err = errno;
    if (iov != small)
        free(iov);
    return n < 0 ? -(long long)err : (long long)n;
}
"""

# cffi execs this script before the package can be imported: load the helper by path.
build_ffi = runpy.run_path(str(HERE / "_csrc" / "ffi_assemble.py"))["build_ffi"]

ffibuilder = build_ffi(
    "portmsg._posix_cffi",
    prelude=PRELUDE,
    entry_source=ENTRY_SOURCE,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
