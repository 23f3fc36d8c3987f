/*
 * ctlsock.h - the client side of the queue control socket, shared by
 * posternctl (queue commands) and postern-sendmail (submission). The
 * protocol is the IPC framing of ipc.h with the types of ipc_types.h
 * (IPC_QUEUED_CTL_REQUEST ..., IPC_QUEUED_MSG_OPEN ...), one blocking
 * request at a time (ipc_send_blocking / ipc_recv_blocking).
 */
#ifndef POSTERN_CTLSOCK_H
#define POSTERN_CTLSOCK_H

/* ctlsock_connect - a blocking connection to the Unix socket at path, with
 * send/receive timeouts of timeout_s seconds (0: none); the descriptor,
 * or -1 with errno set (ENOENT, ECONNREFUSED: queued is not running) */
int ctlsock_connect(const char *path, int timeout_s);

#endif
