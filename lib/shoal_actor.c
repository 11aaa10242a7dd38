/*  shoal_actor - a joinable actor thread, see the header for why.          */
#include "shoal_private.h"
#include <pthread.h>

struct _shoal_actor_t {
    pthread_t thread;
    zsock_t *pipe;              //  ours
    zsock_t *backend;           //  the actor's, closed by its thread
    shoal_actor_fn *fn;
    void *args;
};

static void *
s_thread (void *argument)
{
    shoal_actor_t *self = (shoal_actor_t *) argument;
    self->fn (self->backend, self->args);
    zsock_destroy (&self->backend);
    return NULL;
}

shoal_actor_t *
shoal_actor_new (shoal_actor_fn *fn, void *args)
{
    shoal_actor_t *self = (shoal_actor_t *) zmalloc (sizeof (shoal_actor_t));
    self->fn = fn;
    self->args = args;
    self->pipe = zsys_create_pipe (&self->backend);
    if (!self->pipe || pthread_create (&self->thread, NULL, s_thread, self)) {
        zsock_destroy (&self->pipe);
        zsock_destroy (&self->backend);
        free (self);
        return NULL;
    }
    zsock_wait (self->pipe);
    return self;
}

void
shoal_actor_destroy (shoal_actor_t **self_p)
{
    shoal_actor_t *self = *self_p;
    if (!self)
        return;
    zsock_set_sndtimeo (self->pipe, 0);
    zstr_send (self->pipe, "$TERM");
    pthread_join (self->thread, NULL);
    zsock_destroy (&self->pipe);
    free (self);
    *self_p = NULL;
}

zsock_t *
shoal_actor_sock (shoal_actor_t *self)
{
    return self->pipe;
}
