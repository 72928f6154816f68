/* Fuzz driver for the control-buffer walker (portmsg/_csrc/cmsg_walk.c),
 * built by tools/sanitize_walker.py with -fsanitize=address,undefined.
 *
 * Two layouts: the host's own cmsghdr and CMSG_* macros, and (with
 * -DPM_WSA_LAYOUT) WSACMSGHDR with the WSA_CMSG_* formulas of mswsock.h,
 * so the Windows arithmetic runs under the sanitizers too.  Each buffer is
 * allocated at exactly its length, so any read past it is caught. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifdef PM_WSA_LAYOUT
typedef struct { size_t cmsg_len; int cmsg_level; int cmsg_type; } pm_wsacmsghdr;
#define PM_ALIGN8(n) (((n) + 7) & ~(size_t)7)
#define PM_CMSGHDR pm_wsacmsghdr
#define PM_CMSG_DATA(c) ((unsigned char *)(c) + PM_ALIGN8(sizeof(pm_wsacmsghdr)))
#define PM_CMSG_SPACE(n) (PM_ALIGN8(sizeof(pm_wsacmsghdr) + PM_ALIGN8(n)))
#define PM_CMSG_LEN(n) (PM_ALIGN8(sizeof(pm_wsacmsghdr)) + (n))
#else
#define PM_CMSGHDR struct cmsghdr
#define PM_CMSG_DATA(c) CMSG_DATA(c)
#define PM_CMSG_SPACE(n) CMSG_SPACE(n)
#define PM_CMSG_LEN(n) CMSG_LEN(n)
#endif

typedef int pm_socket;
typedef struct { void *base; size_t len; } pm_buf;
typedef struct {
    void *fn; char *data; size_t datalen; const pm_buf *more; int nmore; char *name; int namelen;
    char *control; size_t controllen; long long *head; long long *records; int maxrecords;
    char *prev_name; char *prev_control; long long prev_namelen; long long prev_controllen;
} pm_recv_args;
#define PM_HEADER 6
#define PM_RECORD 4
#define PM_SAME_NAME 1
#define PM_SAME_CONTROL 2
#include "../portmsg/_csrc/cmsg_walk.c"

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 200000;
    long records_seen = 0, i;
    for (i = 0; i < iterations; i++) {
        size_t len = next() % 300, off = 0;
        char *buf = malloc(len ? len : 1);
        long long records[4 * 64];
        int n, r;
        for (size_t k = 0; k < len; k++)
            buf[k] = (char)next();
        /* Half the inputs: a chain of plausible headers with hostile lengths. */
        while ((i & 1) && off + sizeof(PM_CMSGHDR) <= len) {
            PM_CMSGHDR h;
            uint64_t pick = next() % 6;
            h.cmsg_len = pick == 0 ? 0 : pick == 1 ? (size_t)-1 : pick == 2 ? len - off + 8
                       : PM_CMSG_LEN(next() % 40);
            h.cmsg_level = (int)next();
            h.cmsg_type = (int)next();
            memcpy(buf + off, &h, sizeof h);
            off += PM_CMSG_SPACE(next() % 40);
        }
        n = pm_walk(buf, len, records, 64);
        for (r = 0; r < n; r++) {
            long long o = records[4 * r + 2], l = records[4 * r + 3];
            if (o < 0 || l < 0 || (size_t)(o + l) > len) {
                fprintf(stderr, "record %d outside the buffer: offset %lld length %lld buffer %zu\n", r, o, l, len);
                return 1;
            }
        }
        records_seen += n;
        {
            /* pm_report: the walk plus the same-as-previous marks and copies. */
            static char name[128], prev_name[128], prev_control[300];
            static pm_recv_args a = {0};
            long long head[PM_HEADER];
            a.namelen = (int)sizeof name;
            a.controllen = sizeof prev_control;
            a.maxrecords = 64;
            a.prev_name = prev_name;
            a.prev_control = prev_control;
            if (i == 0)
                a.prev_namelen = a.prev_controllen = -1;
            pm_report(&a, head, records, (long long)len, 0, name, (int)(next() % 129), buf, len);
            if (head[4] != n) {
                fprintf(stderr, "pm_report walked %lld records, pm_walk %d\n", head[4], n);
                return 1;
            }
        }
        free(buf);
    }
    printf("%s layout: %ld buffers walked, %ld records, all inside their buffers\n",
#ifdef PM_WSA_LAYOUT
           "WSACMSGHDR",
#else
           "cmsghdr",
#endif
           iterations, records_seen);
    return 0;
}
