/* Entry points written once over each platform's own pm_recv and pm_send
 * (declared in portmsg.h): the receive into a caller's buffer, and the batch
 * calls for platforms without recvmmsg / sendmmsg. */

int pm_gil_kept(void)
{
#if defined(PM_GIL_KEPT) && PM_GIL_KEPT
    return PyGILState_Check();
#else
    return 0;
#endif
}

int pm_recv1(pm_recv_args *a)
{
    const long long *h = a->head;
    int r = pm_recv(a->fd, a->flags, a);
    if (r < 0)
        return r;
    if (h[5] == (PM_SAME_NAME | PM_SAME_CONTROL | PM_SAME_FLAGS) && h[0] <= (long long)a->datalen && h[0] <= INT_MAX)
        return (int)h[0];
    return PM_FRESH;
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

/* ---- pm_recv_indexed (see pm_batch_index in portmsg.h) ---- */

#define PM_PROBES 4

static unsigned pm_hash(const char *p, size_t n)
{
    unsigned h = 2166136261u; /* FNV-1a */
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* The slot of `key` (len bytes, plus `tag`) in a table of `slots` slots of
 * `room` bytes: the one holding it, else the first not used by this call
 * among its PM_PROBES places (refilled, and listed as fresh); -1 if every
 * place is taken by this call. */
static int pm_slot(pm_batch_index *x, int kind, int datagram, const char *key, long long len, long long tag,
                   char *table, size_t room, long long *lens, long long *tags, int *stamps, int slots)
{
    unsigned h;
    int free_slot = -1, p;
    if (len < 0 || (size_t)len > room)
        return -1;
    h = pm_hash(key, (size_t)len);
    for (p = 0; p < PM_PROBES; p++) {
        int s = (int)((h + (unsigned)p) & (unsigned)(slots - 1));
        if (lens[s] == len && (tags == NULL || tags[s] == tag) && memcmp(table + (size_t)s * room, key, (size_t)len) == 0) {
            stamps[s] = x->stamp;
            return s;
        }
        if (free_slot < 0 && stamps[s] != x->stamp)
            free_slot = s;
    }
    if (free_slot >= 0) {
        memcpy(table + (size_t)free_slot * room, key, (size_t)len);
        lens[free_slot] = len;
        stamps[free_slot] = x->stamp;  /* from here on this call's: pm_index_empty(x, 0) empties it */
        if (tags != NULL)
            tags[free_slot] = tag;
        x->fresh[3 * x->nfresh] = kind;
        x->fresh[3 * x->nfresh + 1] = free_slot;
        x->fresh[3 * x->nfresh + 2] = datagram;
        x->nfresh++;
    }
    return free_slot;
}

/* Write v in decimal at p; return the digits written. */
static int pm_put_count(char *p, long long v)
{
    char digits[24];
    int n = 0, k = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        p[k++] = digits[--n];
    return k;
}

/* Empty the slots this call used (every slot, with `all`), and forget the last datagram's slots and format. */
static void pm_index_empty(pm_batch_index *x, int all)
{
    int s;
    for (s = 0; s < PM_PEER_SLOTS; s++)
        if (all || x->peer_stamp[s] == x->stamp)
            x->peer_len[s] = -1;
    for (s = 0; s < PM_CONTROL_SLOTS; s++)
        if (all || x->control_stamp[s] == x->stamp)
            x->control_len[s] = -1;
    x->nfresh = 0;
    x->last_peer = x->last_control = -1;
    x->prev_formatlen = -1;
}

void pm_index_clear(pm_batch_index *x)
{
    pm_index_empty(x, 1);
}

int pm_recv_indexed(pm_socket s, int flags, int n, pm_batch_index *x)
{
    pm_recv_args *a = x->args;
    const size_t namelen = (size_t)a->namelen, controllen = a->controllen;
    const long long datalen = (long long)a->datalen;
    int got, i, result, many_peers = 0, many_controls = 0;
    long long at = 0, last_nbytes = -1, last_gap = -1;
    char *f = x->format, *piece = x->format;
    int piecelen = 0;

    x->nfresh = 0;
    if (n > PM_INDEX_COUNT)  /* the count must fit its bits */
        return -PM_EINVAL;
    got = pm_recv_batch(s, flags, n, a);
    if (got < 0)
        return got;
    result = got;
    x->stamp++;
    for (i = 0; i < got; i++) {
        const long long *h = a->head + (size_t)i * PM_HEADER;
        const long long nbytes = h[0] < datalen ? h[0] : datalen, slot = (long long)i * datalen;
        int peer = x->last_peer, control = x->last_control;
        /* The walker compared with the datagram before: look up only what changed. */
        if (!(h[5] & PM_SAME_NAME) || peer < 0)
            peer = pm_slot(x, 0, i, a->name + (size_t)i * namelen, h[2], 0, x->peers, namelen, x->peer_len, NULL,
                           x->peer_stamp, PM_PEER_SLOTS);
        if (!(h[5] & PM_SAME_CONTROL) || h[1] != x->last_flags || control < 0)
            control = pm_slot(x, 1, i, a->control + (size_t)i * controllen, h[3], h[1], x->controls, controllen,
                              x->control_len, x->control_flags, x->control_stamp, PM_CONTROL_SLOTS);
        if (peer < 0 || control < 0) {  /* Python decodes the call by its heads: its lists hold none of its slots */
            pm_index_empty(x, 0);
            a->head[5] &= ~(long long)(PM_SAME_NAME | PM_SAME_CONTROL);  /* Python keeps no objects of the call before */
            return got | PM_INDEX_MIXED;
        }
        x->peer_stamp[peer] = x->stamp;
        x->control_stamp[control] = x->stamp;
        if (i > 0 && peer != x->last_peer)
            many_peers = 1;
        if (i > 0 && control != x->last_control)
            many_controls = 1;
        x->last_peer = peer;
        x->last_control = control;
        x->last_flags = h[1];
        x->peer_of[i] = peer;
        x->control_of[i] = control;
        if (i > 0 && nbytes == last_nbytes && slot - at == last_gap) {
            memcpy(f, piece, (size_t)piecelen);  /* as the datagram before: no digits to work out */
            f += piecelen;
        } else {
            piece = f;
            if (slot > at) {
                f += pm_put_count(f, slot - at);
                *f++ = 'x';
            }
            f += pm_put_count(f, nbytes);
            *f++ = 's';
            piecelen = (int)(f - piece);
            last_nbytes = nbytes;
            last_gap = slot - at;
        }
        at = slot + nbytes;
    }
    x->formatlen = (int)(f - x->format);
    if (x->formatlen == x->prev_formatlen && memcmp(x->format, x->prev_format, (size_t)x->formatlen) == 0) {
        result |= PM_INDEX_SAME_FORMAT;
    } else {
        memcpy(x->prev_format, x->format, (size_t)x->formatlen);
        x->prev_formatlen = x->formatlen;
    }
    if (many_peers)
        result |= PM_INDEX_PEERS;
    if (many_controls)
        result |= PM_INDEX_CONTROLS;
    if (x->nfresh > 0)
        result |= PM_INDEX_FRESH;
    return result | (int)((unsigned)x->last_peer << PM_INDEX_PEER_SHIFT)
           | (int)((unsigned)x->last_control << PM_INDEX_CONTROL_SHIFT);
}
