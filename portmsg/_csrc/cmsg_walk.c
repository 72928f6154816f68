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

#include <string.h>

static size_t pm_cmsg_data_offset(void)
{
    PM_CMSGHDR probe;
    return (size_t)((unsigned char *)PM_CMSG_DATA(&probe) - (unsigned char *)&probe);
}

size_t pm_cmsg_len(size_t length) { return PM_CMSG_LEN(length); }
size_t pm_cmsg_space(size_t length) { return PM_CMSG_SPACE(length); }

int pm_walk(const unsigned char *control, size_t controllen,
            pm_record *records, int maxrecords)
{
    const size_t data_offset = pm_cmsg_data_offset();
    const size_t header = PM_CMSG_LEN(0);
    size_t offset = 0;
    int n = 0;

    if (control == NULL)
        return 0;
    while (n < maxrecords && controllen - offset >= sizeof(PM_CMSGHDR)
           && controllen - offset >= header) {
        PM_CMSGHDR h;
        size_t room = controllen - offset;
        size_t length, step;

        memcpy(&h, control + offset, sizeof h);
        length = (size_t)h.cmsg_len;
        if (length < header)
            break;  /* a zeroed or corrupt header ends the chain */
        if (length > room)
            length = room;  /* cut by MSG_CTRUNC or corrupt: keep what is here */
        records[n].level = h.cmsg_level;
        records[n].type = h.cmsg_type;
        records[n].offset = offset + data_offset;
        records[n].length = length - header;
        n++;
        step = PM_CMSG_SPACE(length - header);
        if (step >= room)
            break;
        offset += step;
    }
    return n;
}

size_t pm_encode(const pm_record *records, int n, const unsigned char *payload,
                 unsigned char *control, size_t controllen)
{
    const size_t data_offset = pm_cmsg_data_offset();
    size_t offset = 0;
    int i;

    for (i = 0; i < n; i++) {
        PM_CMSGHDR h;
        size_t space = PM_CMSG_SPACE(records[i].length);

        if (space < records[i].length || space > controllen - offset)
            return 0;
        memset(&h, 0, sizeof h);
        h.cmsg_len = PM_CMSG_LEN(records[i].length);
        h.cmsg_level = records[i].level;
        h.cmsg_type = records[i].type;
        memset(control + offset, 0, space);
        memcpy(control + offset, &h, sizeof h);
        memcpy(control + offset + data_offset, payload + records[i].offset,
               records[i].length);
        offset += space;
    }
    return offset;
}
