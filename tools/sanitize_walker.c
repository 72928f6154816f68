/* Fuzz driver for the control-buffer walker (portmsg/_csrc/cmsg_walk.c),
 * built by tools/sanitize_walker.py with -fsanitize=address,undefined.
 *
 * Two layouts: the host's own cmsghdr and CMSG_* macros, and (with
 * -DPM_WSA_LAYOUT) WSACMSGHDR with the WSA_CMSG_* formulas of mswsock.h,
 * so the Windows arithmetic runs under the sanitizers too.  Each buffer is
 * allocated at exactly its length, so any read or write past it is caught.
 * Three parts: pm_walk over random and hostile buffers, pm_report over the
 * same, and pm_encode over random records (hostile lengths, levels and
 * types outside a C int, buffers too small), whose output is walked back. */
#include <limits.h>
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

/* The real shared header: the harness can never drift from it. */
typedef int pm_socket;
#include "../portmsg/_csrc/portmsg.h"
#include "../portmsg/_csrc/cmsg_walk.c"

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }

/* pm_encode on random records: a result of 0 or one that fits, never a write
 * past the control buffer, and when it fits, the walker reads back exactly
 * the records that went in. */
static int check_encode(void)
{
    long long records[4 * 6], back[4 * 64];
    char payload[6 * 40];
    int n = (int)(next() % 7), i, valid = 1, m;
    size_t want = 0, controllen, used;
    char *control;
    for (i = 0; i < (int)sizeof payload; i++)
        payload[i] = (char)next();
    for (i = 0; i < n; i++) {
        long long *r = records + 4 * i;
        uint64_t pick = next() % 10;
        r[0] = pick == 0 ? (long long)INT_MAX + 1 : pick == 1 ? (long long)INT_MIN - 1 : (long long)(int)next();
        r[1] = (long long)(int)next();
        r[2] = (long long)(next() % 200);
        r[3] = pick == 2 ? -1 : (long long)(next() % 40);
        if (pick < 3)
            valid = 0;
        else
            want += PM_CMSG_SPACE((size_t)r[3]);
    }
    controllen = next() % 3 == 0 ? (size_t)(next() % (want + 1)) : want;
    control = malloc(controllen ? controllen : 1);
    used = pm_encode(records, n, payload, control, controllen);
    if (used > controllen) {
        fprintf(stderr, "pm_encode used %zu of %zu bytes\n", used, controllen);
        return 1;
    }
    if (valid && controllen == want && used != want) {
        fprintf(stderr, "pm_encode refused valid records: %zu of %zu\n", used, want);
        return 1;
    }
    if (!valid && used != 0) {
        fprintf(stderr, "pm_encode accepted a record it must refuse\n");
        return 1;
    }
    if (used == want && valid) {
        m = pm_walk(control, used, back, 64);
        if (m != n) {
            fprintf(stderr, "encoded %d records, walked %d back\n", n, m);
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (back[4 * i] != records[4 * i] || back[4 * i + 1] != records[4 * i + 1] || back[4 * i + 3] != records[4 * i + 3]
                || memcmp(control + back[4 * i + 2], payload + records[4 * i + 2], (size_t)records[4 * i + 3]) != 0) {
                fprintf(stderr, "record %d did not survive encode + walk\n", i);
                return 1;
            }
        }
    }
    free(control);
    return 0;
}

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
        if (check_encode() != 0)
            return 1;
    }
    printf("%s layout: %ld buffers walked, %ld records, all inside their buffers; %ld encodes checked\n",
#ifdef PM_WSA_LAYOUT
           "WSACMSGHDR",
#else
           "cmsghdr",
#endif
           iterations, records_seen, iterations);
    return 0;
}
