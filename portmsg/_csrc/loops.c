/* Entry points written once over each platform's own pm_recv and pm_send
 * (declared in portmsg.h): the receive into a caller's buffer, and the batch
 * calls for platforms without recvmmsg / sendmmsg. */

int pm_recv1(pm_recv_args *a)
{
    return pm_recv(a->fd, a->flags, a);
}

int pm_recv_into(pm_socket s, int flags, pm_recv_args *a, char *data, size_t datalen)
{
    pm_recv_args one = *a;
    int r;
    one.data = data;
    one.datalen = datalen;
    r = pm_recv(s, flags, &one);
    a->prev_namelen = one.prev_namelen;  /* the marks compare with the datagram before */
    a->prev_controllen = one.prev_controllen;
    return r;
}

/* Receive datagram i into slot i of `a`, one pm_recv at a time.  The first
 * call takes `flags` and may block; each later one takes `later_flags` and
 * is made only while queued(s) says another datagram is waiting (NULL:
 * always try).  Returns the count, or the first call's -(error code). */
int pm_recv_each(pm_socket s, int flags, int later_flags, int n, pm_recv_args *a, int (*queued)(pm_socket))
{
    const size_t stride = (size_t)PM_RECORD * (size_t)a->maxrecords;
    int i;
    for (i = 0; i < n; i++) {
        pm_recv_args one = *a;
        int r;
        if (i > 0 && queued != NULL && !queued(s))
            break;
        one.data = a->data + (size_t)i * a->datalen;
        one.name = a->name + (size_t)i * (size_t)a->namelen;
        one.control = a->control + (size_t)i * a->controllen;
        one.head = a->head + (size_t)i * PM_HEADER;
        one.records = a->records + (size_t)i * stride;
        one.nmore = 0;
        one.wait = i == 0 ? a->wait : 0;
        r = pm_recv(s, i == 0 ? flags : later_flags, &one);
        a->prev_namelen = one.prev_namelen;  /* the marks compare with the datagram before */
        a->prev_controllen = one.prev_controllen;
        if (r < 0) {
            if (i == 0)
                return r;
            break;
        }
    }
    return i;
}

/* Send items one pm_send at a time, stopping at the first failure.
 * Returns how many went, or the first one's -(error code). */
int pm_send_each(void *fn, pm_socket s, const pm_send_item *items, int n, int flags)
{
    int i;
    for (i = 0; i < n; i++) {
        long long r = pm_send(fn, s, items[i].data, items[i].datalen, NULL, 0, items[i].name, items[i].namelen,
                              items[i].control, items[i].controllen, flags);
        if (r < 0)
            return i > 0 ? i : (int)r;
    }
    return n;
}

#define PM_PACKED_SMALL 64

int pm_send_packed(void *fn, pm_socket s, const char *datas, const char *names, const char *controls,
                   const long long *lens, int n)
{
    pm_send_item small[PM_PACKED_SMALL];
    pm_send_item *items = small;
    char *aligned = NULL;
    size_t data_at = 0, name_at = 0, control_at = 0;
    int i, r;

    if (n <= 0)
        return 0;
    if (n > PM_PACKED_SMALL) {
        items = malloc(sizeof *items * (size_t)n);
        if (items == NULL)
            return -PM_ENOMEM;
    }
    for (i = 0; i < n; i++)
        control_at += (size_t)lens[3 * i + 2];
    if (control_at > 0 && ((uintptr_t)controls % sizeof(size_t)) != 0) {
        /* Control messages are read as structs: give them an aligned home. */
        aligned = malloc(control_at);
        if (aligned == NULL) {
            if (items != small)
                free(items);
            return -PM_ENOMEM;
        }
        memcpy(aligned, controls, control_at);
        controls = aligned;
    }
    control_at = 0;
    for (i = 0; i < n; i++) {
        items[i].data = datas + data_at;
        items[i].datalen = (size_t)lens[3 * i];
        items[i].name = names + name_at;
        items[i].namelen = (int)lens[3 * i + 1];
        items[i].control = controls + control_at;
        items[i].controllen = (size_t)lens[3 * i + 2];
        data_at += items[i].datalen;
        name_at += (size_t)items[i].namelen;
        control_at += items[i].controllen;
    }
    r = pm_send_batch(fn, s, items, n, 0);
    free(aligned);
    if (items != small)
        free(items);
    return r;
}
