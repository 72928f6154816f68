/* The control-buffer walker and encoder, written once for both backends.
 *
 * The including prelude defines, from the platform's own headers:
 *   PM_CMSGHDR            struct cmsghdr / WSACMSGHDR
 *   PM_CMSG_DATA(c)       CMSG_DATA / WSA_CMSG_DATA
 *   PM_CMSG_SPACE(n)      CMSG_SPACE / WSA_CMSG_SPACE
 *   PM_CMSG_LEN(n)        CMSG_LEN / WSA_CMSG_LEN
 *
 * The walker never dereferences a header that is not wholly inside the
 * buffer and never trusts cmsg_len: the length is clamped to the bytes left,
 * so a record can never point outside the buffer.  It steps with
 * PM_CMSG_SPACE(payload) rather than CMSG_NXTHDR, which is the same step on
 * every platform (CMSG_ALIGN(cmsg_len) == CMSG_SPACE(cmsg_len - CMSG_LEN(0)))
 * but, unlike NXTHDR, cannot overflow a pointer on a hostile cmsg_len, and
 * does not drop a final header whose length runs past the end (glibc's
 * NXTHDR does).  Headers are copied out with memcpy, so the buffer need not
 * be aligned. */

#include <limits.h>
#include <string.h>

static size_t pm_cmsg_data_offset(void)
{
    PM_CMSGHDR probe;
    return (size_t)((unsigned char *)PM_CMSG_DATA(&probe) - (unsigned char *)&probe);
}

size_t pm_cmsg_len(size_t length) { return PM_CMSG_LEN(length); }
size_t pm_cmsg_space(size_t length) { return PM_CMSG_SPACE(length); }

int pm_walk(const char *control, size_t controllen, long long *records, int maxrecords)
{
    const size_t data_offset = pm_cmsg_data_offset();
    /* CMSG_DATA sits at CMSG_LEN(0) on every known platform; were it ever
     * further in, taking the larger as the header still keeps
     * offset + length within the buffer. */
    const size_t header = PM_CMSG_LEN(0) > data_offset ? PM_CMSG_LEN(0) : data_offset;
    size_t offset = 0;
    int n = 0;

    if (control == NULL)
        return 0;
    while (n < maxrecords && controllen - offset >= sizeof(PM_CMSGHDR)
           && controllen - offset >= header) {
        PM_CMSGHDR h;
        size_t room = controllen - offset;
        size_t length, step;
        long long *r = records + (size_t)n * PM_RECORD;

        memcpy(&h, control + offset, sizeof h);
        length = (size_t)h.cmsg_len;
        if (length < header)
            break;  /* a zeroed or corrupt header ends the chain */
        if (length > room)
            length = room;  /* cut by MSG_CTRUNC or corrupt: keep what is here */
        r[0] = h.cmsg_level;
        r[1] = h.cmsg_type;
        r[2] = (long long)(offset + data_offset);
        r[3] = (long long)(length - header);
        n++;
        step = PM_CMSG_SPACE(length - header);
        if (step >= room)
            break;
        offset += step;
    }
    return n;
}

size_t pm_encode(const long long *records, int n, const char *payload, char *control, size_t controllen)
{
    const size_t data_offset = pm_cmsg_data_offset();
    size_t offset = 0;
    int i;

    for (i = 0; i < n; i++) {
        const long long *r = records + (size_t)i * PM_RECORD;
        size_t length = (size_t)r[3];
        size_t space = PM_CMSG_SPACE(length);
        PM_CMSGHDR h;

        if (r[3] < 0 || space < length || space > controllen - offset)
            return 0;
        if (r[0] < INT_MIN || r[0] > INT_MAX || r[1] < INT_MIN || r[1] > INT_MAX)
            return 0;  /* Python raises OverflowError first; never truncate a level or type */
        memset(&h, 0, sizeof h);
        h.cmsg_len = PM_CMSG_LEN(length);
        h.cmsg_level = (int)r[0];
        h.cmsg_type = (int)r[1];
        memset(control + offset, 0, space);
        memcpy(control + offset, &h, sizeof h);
        memcpy(control + offset + data_offset, payload + r[2], length);
        offset += space;
    }
    return offset;
}

/* Fill one datagram's head and records after a successful receive, and
 * mark what repeats the datagram before it (see PM_SAME_NAME). */
static int pm_report(pm_recv_args *a, long long *head, long long *records, long long nbytes, int flags,
                     const char *name, int namelen, const char *control, size_t controllen)
{
    int n = pm_walk(control, controllen, records, a->maxrecords);
    long long same = 0;
    head[0] = nbytes;
    head[1] = flags;
    head[2] = namelen;
    head[3] = (long long)controllen;
    head[4] = n;
    if (a->prev_name != NULL && namelen >= 0 && namelen <= a->namelen) {
        if (a->prev_namelen == namelen && memcmp(a->prev_name, name, (size_t)namelen) == 0) {
            same |= PM_SAME_NAME;
        } else {
            memcpy(a->prev_name, name, (size_t)namelen);
            a->prev_namelen = namelen;
        }
    }
    if (a->prev_control != NULL && controllen <= a->controllen) {
        if (a->prev_controllen == (long long)controllen && memcmp(a->prev_control, control, controllen) == 0) {
            same |= PM_SAME_CONTROL;
        } else {
            memcpy(a->prev_control, control, controllen);
            a->prev_controllen = (long long)controllen;
        }
    }
    if (a->prev_flags == flags)
        same |= PM_SAME_FLAGS;
    else
        a->prev_flags = flags;
    head[5] = same;
    return n;
}
