/* POSIX prelude: the system headers, pm_socket, the PM_CMSG_* macros the
 * shared walker is written against, and the layout facts (PM_* sizes and
 * offsets) the constants table exports.  Compiled before portmsg.h. */
#define _GNU_SOURCE 1  /* glibc: recvmmsg, sendmmsg, struct in_pktinfo, struct ucred */
#define __APPLE_USE_RFC_3542 1  /* macOS: the RFC 3542 IPV6_RECVPKTINFO names, not RFC 2292's */
#include <errno.h>
#include <stddef.h>  /* offsetof: glibc pulls it in by the way, musl does not */
#include <stdint.h>
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
#define PM_ENOMEM ENOMEM  /* the code a failed allocation reports, as -(code) */
#define PM_EINVAL EINVAL  /* the code an argument out of range reports */

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
#if defined(IP_RECVERR) && defined(__has_include)
#if __has_include(<linux/errqueue.h>)
/* Linux's error queue: struct sock_extended_err, then the offender's sockaddr. */
#include <linux/errqueue.h>
#define PM_EXTENDED_ERR_SIZE sizeof(struct sock_extended_err)
#endif
#endif
#if defined(SO_MEMINFO) && defined(__has_include)
#if __has_include(<linux/sock_diag.h>)
/* Linux's socket memory counters: SO_MEMINFO fills SK_MEMINFO_VARS u32 values, drops among them
 * (enumerators in the header, which #ifdef cannot see: named here). */
#include <linux/sock_diag.h>
#define PM_SK_MEMINFO_DROPS SK_MEMINFO_DROPS
#define PM_SK_MEMINFO_VARS SK_MEMINFO_VARS
#endif
#endif
#ifdef MSG_WAITFORONE
/* recvmmsg / sendmmsg exist wherever MSG_WAITFORONE does (Linux, FreeBSD):
 * one batch slot is an mmsghdr plus its iovec. */
#define PM_BATCH_VECTOR_SIZE (sizeof(struct mmsghdr) + sizeof(struct iovec))
#endif

/* The GIL.  cffi's wrapper of every function releases it around the call
 * and saves errno after it: ~470 instructions a call, more than a receive's
 * own C.  POSIX receives never block here (Python passes MSG_DONTWAIT and
 * waits itself, _wait.py) and portmsg's C returns -errno rather than leaving
 * it for ffi.errno, so this module's wrappers keep the GIL and skip errno:
 * cffi defines these as macros before this source and uses them after it.
 * What can block (a send on a blocking socket) releases the GIL itself,
 * between PM_BLOCKING_BEGIN and PM_BLOCKING_END.  pm_gil_kept() reports
 * whether this took (tests/test_build.py fails when a cffi release changes
 * how its wrappers are made).  Outside cffi (the sanitizer, crossbuild)
 * there is no Python and nothing to do. */
#if defined(Py_BEGIN_ALLOW_THREADS) && defined(_cffi_save_errno) && defined(MSG_DONTWAIT)
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#define Py_END_ALLOW_THREADS }
#undef _cffi_restore_errno
#undef _cffi_save_errno
#define _cffi_restore_errno() ((void)0)
#define _cffi_save_errno() ((void)0)
#define PM_BLOCKING_BEGIN { PyThreadState *pm_thread_ = PyEval_SaveThread();
#define PM_BLOCKING_END PyEval_RestoreThread(pm_thread_); }
#define PM_GIL_KEPT 1
/* Exported by every CPython portmsg supports, but not declared under Py_LIMITED_API by 3.13's
 * headers (cffi builds abi3): pm_gil_kept() asks it whether the wrapper kept the GIL. */
PyAPI_FUNC(int) PyGILState_Check(void);
#else
#define PM_BLOCKING_BEGIN {
#define PM_BLOCKING_END }
#define PM_GIL_KEPT 0
#endif
