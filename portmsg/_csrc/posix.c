/* POSIX entry points (declared in portmsg.h): recvmsg, recvmmsg where the
 * C library has it, sendmsg, sendmmsg. */
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
#ifdef PM_BATCH_VECTOR_SIZE
    /* One recvmmsg call: block for the first datagram, never for the rest.
     * The mmsghdr and iovec arrays live in the caller's preset vectors. */
    const size_t stride = (size_t)PM_RECORD * (size_t)a->maxrecords;
    struct mmsghdr *msgs = a->vectors;
    struct iovec *iov;
    int i, got, err;

    if (msgs == NULL || n > a->nvectors)
        return -EINVAL;
    iov = (struct iovec *)(msgs + a->nvectors);
    for (i = 0; i < n; i++) {
        struct msghdr *m = &msgs[i].msg_hdr;
        iov[i].iov_base = a->data + (size_t)i * a->datalen;
        iov[i].iov_len = a->datalen;
        memset(m, 0, sizeof *m);
        m->msg_iov = &iov[i];
        m->msg_iovlen = 1;
        m->msg_name = a->namelen > 0 ? a->name + (size_t)i * (size_t)a->namelen : NULL;
        m->msg_namelen = a->namelen > 0 ? (socklen_t)a->namelen : 0;
        m->msg_control = a->controllen > 0 ? a->control + (size_t)i * a->controllen : NULL;
        m->msg_controllen = a->controllen;
    }
    got = recvmmsg(s, msgs, (unsigned int)n, flags | MSG_WAITFORONE, NULL);
    err = errno;
    for (i = 0; i < got; i++) {
        struct msghdr *m = &msgs[i].msg_hdr;
        pm_report(a, a->head + (size_t)i * PM_HEADER, a->records + (size_t)i * stride, msgs[i].msg_len,
                  m->msg_flags, (char *)m->msg_name, (int)m->msg_namelen, (char *)m->msg_control,
                  m->msg_control != NULL ? (size_t)m->msg_controllen : 0);
    }
    return got < 0 ? -err : got;
#else
    /* No recvmmsg: the first receive waits as `flags` say, the rest never. */
    return pm_recv_each(s, flags, flags | MSG_DONTWAIT, n, a, NULL);
#endif
}

int pm_send_batch(void *fn, pm_socket s, const pm_send_item *items, int n, int flags)
{
#ifdef PM_BATCH_VECTOR_SIZE
    /* One sendmmsg call. */
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
    PM_BLOCKING_BEGIN
    sent = sendmmsg(s, msgs, (unsigned int)n, flags);
    err = errno;
    PM_BLOCKING_END
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
    PM_BLOCKING_BEGIN
    n = sendmsg(s, &msg, flags);
    err = errno;
    PM_BLOCKING_END
    if (iov != small)
        free(iov);
    return n < 0 ? -(long long)err : (long long)n;
}

/* POSIX receives need no event: they are never overlapped. */
void *pm_event_new(void) { return NULL; }
void pm_event_free(void *event) { (void)event; }
