/*  shoal_socket - the one place where shoal makes sockets, so every socket of
    a kind gets the same options (and later, the same security).             */
#ifndef SHOAL_SOCKET_H_INCLUDED
#define SHOAL_SOCKET_H_INCLUDED

//  ZMTP heartbeats: a peer that stops answering at the transport level
//  (frozen, cable cut) is dropped after the timeout.
#define SHOAL_HEARTBEAT_IVL     250
#define SHOAL_HEARTBEAT_TIMEOUT 1000
//  How long a closing server waits to flush replies it has already queued
#define SHOAL_SERVER_LINGER     1000

//  A ROUTER that serves requests, bound to ENDPOINT (and to INPROC if not
//  NULL). Returns NULL if a bind fails, with the reason in ERROR. The bound
//  endpoint, with the real port, is written to BOUND.
zsock_t *
    shoal_socket_server (const char *endpoint, const char *inproc, size_t max_message,
                         char *bound, size_t bound_size, char *error, size_t error_size);

//  A DEALER that makes calls, connected to ENDPOINT, accepting replies of
//  at most MAX_MESSAGE bytes. Returns NULL if the endpoint is malformed
//  (errno says why).
zsock_t *
    shoal_socket_client (const char *endpoint, size_t max_message);

#endif
