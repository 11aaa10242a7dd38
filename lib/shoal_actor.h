/*  shoal_actor - a zactor whose thread is joined when it is destroyed.

    CZMQ 4.2's zactor_destroy returns when the actor signals that it ends,
    before its thread has closed its end of the pipe; zsys_shutdown then
    finds a socket open and waits 200 ms at exit. A short-lived command
    (shoal ls) paid that one run in ten. Joining the thread makes the end
    certain. Same contract as zactor: the actor signals once it is ready,
    and ends on "$TERM".                                                     */
#ifndef SHOAL_ACTOR_H_INCLUDED
#define SHOAL_ACTOR_H_INCLUDED

typedef struct _shoal_actor_t shoal_actor_t;
typedef void (shoal_actor_fn) (zsock_t *pipe, void *args);

//  Starts FN (PIPE, ARGS) on a thread of its own and waits for its first
//  signal. Returns NULL if the thread cannot be made.
shoal_actor_t *
    shoal_actor_new (shoal_actor_fn *fn, void *args);

//  Sends "$TERM" (never blocking: the actor may be gone already), joins
//  the thread and nulls the pointer. Safe on NULL.
void
    shoal_actor_destroy (shoal_actor_t **self_p);

//  The pipe to talk to the actor.
zsock_t *
    shoal_actor_sock (shoal_actor_t *self);

#endif
