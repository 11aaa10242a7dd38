/*  shoal_socket - socket factory. Why each option (see shared/PITFALLS.md):
    - ROUTER_MANDATORY: a reply to a caller that went away fails visibly
      (EHOSTUNREACH, counted) instead of vanishing.
    - MAXMSGSIZE: a peer cannot make us allocate without bound.
    - IMMEDIATE on callers: no queueing towards a peer that is not connected,
      so calls do not pile up behind a dead server.
    - heartbeats: a frozen peer keeps its TCP connection up; only ZMTP
      heartbeats notice it.                                                   */
#include "shoal_private.h"

static void
s_set_heartbeats (zsock_t *socket)
{
    zsock_set_heartbeat_ivl (socket, SHOAL_HEARTBEAT_IVL);
    zsock_set_heartbeat_timeout (socket, SHOAL_HEARTBEAT_TIMEOUT);
    zsock_set_heartbeat_ttl (socket, SHOAL_HEARTBEAT_TIMEOUT);
}

zsock_t *
shoal_socket_server (const char *endpoint, const char *inproc, size_t max_message,
                     char *bound, size_t bound_size, char *error, size_t error_size)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router) {
        snprintf (error, error_size, "cannot create socket: %s", zmq_strerror (errno));
        return NULL;
    }
    zsock_set_router_mandatory (router, 1);
    zsock_set_maxmsgsize (router, (int) max_message);
    zsock_set_linger (router, SHOAL_SERVER_LINGER);
    zsock_set_sndtimeo (router, 0);
    s_set_heartbeats (router);
    //  zmq_bind keeps libzmq's error; the last endpoint gives the real port
    //  of a wildcard bind, so read it before the inproc bind replaces it.
    if (zmq_bind (zsock_resolve (router), endpoint)) {
        snprintf (error, error_size, "cannot bind %s: %s", endpoint, zmq_strerror (errno));
        zsock_destroy (&router);
        return NULL;
    }
    char *last = zsock_last_endpoint (router);
    snprintf (bound, bound_size, "%s", last ? last : endpoint);
    zstr_free (&last);
    if (inproc && zmq_bind (zsock_resolve (router), inproc)) {
        snprintf (error, error_size, "cannot bind %s: %s", inproc, zmq_strerror (errno));
        zsock_destroy (&router);
        return NULL;
    }
    return router;
}

zsock_t *
shoal_socket_client (const char *endpoint, size_t max_message)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    zsock_set_immediate (dealer, 1);
    zsock_set_maxmsgsize (dealer, (int) max_message);
    zsock_set_linger (dealer, 0);
    s_set_heartbeats (dealer);
    if (zmq_connect (zsock_resolve (dealer), endpoint)) {
        int saved = errno;
        zsock_destroy (&dealer);
        errno = saved;
        return NULL;
    }
    return dealer;
}
