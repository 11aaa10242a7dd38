/*  shoal_membership - the node's actor: discovery, gossip, heartbeats.

    Gossip messages are one msgpack array per frame, DEALER to ROUTER:
        ["shoal-node", 1, "STATE", cluster, node, incarnation, endpoint,
         instances, methods, peers, events]
    where events is [publisher endpoint, [[id, delivery, service, pattern],
    ...]]: the node's event publisher and its subscriptions.
        ["shoal-node", 1, "BYE", cluster, node, incarnation]
    A node sends STATE to every peer each beat, at once when its own
    instances change, and straight back to a node it hears from for the
    first time, so joining takes one round trip.

    Trust: a node enters the registry only by speaking to us itself. The
    endpoints in a peer list, a beacon or the rendezvous folder are only
    places where we introduce ourselves. Anything malformed, of another
    cluster or of another version is dropped and counted.                    */
#include "shoal_private.h"

typedef struct {
    zsock_t *dealer;
    bool greeted;               //  our first STATE went out
    int64_t made;               //  when we introduced ourselves
    int64_t heard;              //  last STATE from the node there; 0 = never
    bool seed;                  //  kept however long it is silent
    bool cut;                   //  a fault: what we send it is lost
} s_peer_t;

typedef struct {
    shoal_node_t *node;
    shoal_node_config_t *config;
    zsock_t *pipe;
    zsock_t *router;
    zactor_t *beacon;
    shoal_rendezvous_t *rendezvous;
    shoal_registry_t *registry;
    zhashx_t *peers;            //  gossip endpoint -> s_peer_t
    zlistx_t *locals;           //  shoal_instance_slot_t * of this node
    zlistx_t *subscribers;      //  shoal_subscriber_t * of this node
    uint64_t incarnation;
    msgpack_sbuffer state;      //  our STATE, remade when we send it
    msgpack_zone zone;
    int64_t next_beat;
    int64_t last_beat;
    bool changed;               //  the view must be published again
    size_t ungreeted;           //  peers whose first STATE is still to go
    bool frozen;                //  a fault: no gossip until thawed
    zhashx_t *cut;              //  node id -> its gossip endpoint (a fault)
} s_membership_t;

//  How often a node retries a first STATE while a new peer connects
#define SHOAL_GREET_RETRY 5

static void
s_peer_destroy (void **item)
{
    s_peer_t *peer = (s_peer_t *) *item;
    zsock_destroy (&peer->dealer);
    free (peer);
    *item = NULL;
}

static void
s_pack_preamble (s_membership_t *self, msgpack_packer *packer, size_t fields,
                 const char *kind)
{
    msgpack_pack_array (packer, fields);
    shoal_wire_pack_string (packer, SHOAL_GOSSIP_SIGNATURE);
    msgpack_pack_uint8 (packer, SHOAL_PROTOCOL_VERSION);
    shoal_wire_pack_string (packer, kind);
    shoal_wire_pack_string (packer, self->config->cluster);
    shoal_wire_pack_string (packer, self->config->id);
    msgpack_pack_uint64 (packer, self->incarnation);
}

//  [publisher endpoint, subscriptions]: each broadcast subscriber's
//  patterns, and each local service's balanced ones (SERVICES: name ->
//  one of its slots)
static void
s_pack_events (s_membership_t *self, msgpack_packer *packer, zhashx_t *services)
{
    //  A subscriber's thread may add a pattern while we write: what is
    //  declared is what is written, so each subscriber's count is read once
    size_t count = 0, subscribers = zlistx_size (self->subscribers), index = 0;
    size_t *patterns = (size_t *) malloc ((subscribers + 1) * sizeof (size_t));
    shoal_subscriber_t *subscriber;
    for (subscriber = (shoal_subscriber_t *) zlistx_first (self->subscribers); subscriber;
         subscriber = (shoal_subscriber_t *) zlistx_next (self->subscribers)) {
        patterns [index] = shoal_subscriber_patterns (subscriber);
        count += patterns [index++];
    }
    shoal_instance_slot_t *slot;
    for (slot = (shoal_instance_slot_t *) zhashx_first (services); slot;
         slot = (shoal_instance_slot_t *) zhashx_next (services))
        for (size_t index = 0; index < shoal_service_events (slot->service); index++)
            count += shoal_service_event_at (slot->service, index)->delivery == SHOAL_BALANCED;
    msgpack_pack_array (packer, 2);
    shoal_wire_pack_string (packer, self->config->events);
    msgpack_pack_array (packer, count);
    index = 0;
    for (subscriber = (shoal_subscriber_t *) zlistx_first (self->subscribers); subscriber;
         subscriber = (shoal_subscriber_t *) zlistx_next (self->subscribers), index++)
        for (size_t pattern = 0; pattern < patterns [index]; pattern++) {
            msgpack_pack_array (packer, 4);
            shoal_wire_pack_string (packer, shoal_subscriber_id (subscriber));
            msgpack_pack_uint8 (packer, SHOAL_BROADCAST);
            shoal_wire_pack_string (packer, shoal_subscriber_service (subscriber));
            shoal_wire_pack_string (packer, shoal_subscriber_pattern_at (subscriber, pattern));
        }
    free (patterns);
    for (slot = (shoal_instance_slot_t *) zhashx_first (services); slot;
         slot = (shoal_instance_slot_t *) zhashx_next (services))
        for (size_t index = 0; index < shoal_service_events (slot->service); index++) {
            const shoal_service_event_t *event = shoal_service_event_at (slot->service, index);
            if (event->delivery != SHOAL_BALANCED)
                continue;
            const char *name = shoal_service_name (slot->service);
            msgpack_pack_array (packer, 4);
            shoal_wire_pack_string (packer, name);
            msgpack_pack_uint8 (packer, SHOAL_BALANCED);
            shoal_wire_pack_string (packer, name);
            shoal_wire_pack_string (packer, event->pattern);
        }
}

//  Makes our STATE message from the local instances as they are now
static void
s_make_state (s_membership_t *self)
{
    msgpack_sbuffer_clear (&self->state);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &self->state, msgpack_sbuffer_write);
    s_pack_preamble (self, &packer, 11, "STATE");
    shoal_wire_pack_string (&packer, self->config->endpoint);
    msgpack_pack_array (&packer, zlistx_size (self->locals));
    shoal_instance_slot_t *slot;
    for (slot = (shoal_instance_slot_t *) zlistx_first (self->locals); slot;
         slot = (shoal_instance_slot_t *) zlistx_next (self->locals)) {
        msgpack_pack_array (&packer, 9);
        shoal_wire_pack_string (&packer, shoal_service_name (slot->service));
        shoal_wire_pack_string (&packer, shoal_service_version (slot->service));
        shoal_wire_pack_string (&packer, slot->id);
        shoal_wire_pack_string (&packer, slot->endpoint);
        msgpack_pack_uint8 (&packer, atomic_load (&slot->draining) ? SHOAL_INSTANCE_DRAINING
                                                                   : SHOAL_INSTANCE_UP);
        msgpack_pack_uint32 (&packer, (uint32_t) atomic_load (&slot->busy));
        msgpack_pack_uint32 (&packer, atomic_load (&slot->latency_us));
        msgpack_pack_uint64 (&packer, atomic_load (&slot->calls));
        shoal_wire_pack_string (&packer, slot->inproc);
    }
    //  Idempotent methods per service: every instance of a service has the
    //  same, so the first instance of each speaks for it
    zhashx_t *services = zhashx_new ();
    for (slot = (shoal_instance_slot_t *) zlistx_first (self->locals); slot;
         slot = (shoal_instance_slot_t *) zlistx_next (self->locals))
        if (!zhashx_lookup (services, shoal_service_name (slot->service)))
            zhashx_insert (services, shoal_service_name (slot->service), slot);
    msgpack_pack_map (&packer, zhashx_size (services));
    for (slot = (shoal_instance_slot_t *) zhashx_first (services); slot;
         slot = (shoal_instance_slot_t *) zhashx_next (services)) {
        shoal_wire_pack_string (&packer, shoal_service_name (slot->service));
        msgpack_pack_array (&packer, zlistx_size (slot->idempotent));
        for (char *name = (char *) zlistx_first (slot->idempotent); name;
             name = (char *) zlistx_next (slot->idempotent))
            shoal_wire_pack_string (&packer, name);
    }
    //  The peers we hear from, so that whoever knows one of us knows all
    zlistx_t *endpoints = zlistx_new ();
    shoal_registry_endpoints (self->registry, endpoints);
    msgpack_pack_array (&packer, zlistx_size (endpoints));
    for (char *endpoint = (char *) zlistx_first (endpoints); endpoint;
         endpoint = (char *) zlistx_next (endpoints))
        shoal_wire_pack_string (&packer, endpoint);
    zlistx_destroy (&endpoints);
    s_pack_events (self, &packer, services);
    zhashx_destroy (&services);
}

//  Sends a message to one peer; a peer that cannot take it now loses it.
//  Returns true if it went (or was lost to a cut, as if on the wire).
static bool
s_send_to (s_peer_t *peer, msgpack_sbuffer *message)
{
    if (peer->cut)
        return true;
    return zmq_send (zsock_resolve (peer->dealer), message->data, message->size,
                     ZMQ_DONTWAIT) != -1;
}

static void
s_publish (s_membership_t *self)
{
    size_t pending = 0;
    int64_t now = zclock_mono ();
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (peer->heard == 0 && now - peer->made < self->config->expiry)
            pending++;
    shoal_node_post_view (self->node, shoal_registry_view (self->registry), pending);
    self->changed = false;
}

//  The peer at ENDPOINT, introducing ourselves to it if it is new
static s_peer_t *
s_introduce (s_membership_t *self, const char *endpoint, bool seed)
{
    if (streq (endpoint, self->config->endpoint))
        return NULL;
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, endpoint);
    if (peer)
        return peer;
    if (zhashx_size (self->peers) >= SHOAL_REGISTRY_MAX_NODES)
        return NULL;
    zsock_t *dealer = shoal_socket_client (endpoint, SHOAL_GOSSIP_MAX_MESSAGE);
    if (!dealer)
        return NULL;
    //  A goodbye must get out even when we close right after sending it;
    //  a peer that is not there is retried less and less often
    zsock_set_linger (dealer, 100);
    zsock_set_reconnect_ivl_max (dealer, 1000);
    peer = (s_peer_t *) zmalloc (sizeof (s_peer_t));
    peer->dealer = dealer;
    peer->made = zclock_mono ();
    peer->seed = seed;
    for (char *gone = (char *) zhashx_first (self->cut); gone;
         gone = (char *) zhashx_next (self->cut))
        peer->cut |= streq (gone, endpoint);
    zhashx_insert (self->peers, endpoint, peer);
    //  Not connected yet, ZMQ_IMMEDIATE refuses until it is: the loop tries
    //  again every few ms (s_greet), rather than block here or wait a beat
    self->ungreeted++;
    self->changed = true;
    return peer;
}

//  Sends our first STATE to the new peers that can take it now
static void
s_greet (s_membership_t *self)
{
    s_make_state (self);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer && self->ungreeted;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (!peer->greeted && s_send_to (peer, &self->state)) {
            peer->greeted = true;
            self->ungreeted--;
        }
}

//  Closes the socket to ENDPOINT, unless it is a seed's
static void
s_forget (s_membership_t *self, const char *endpoint)
{
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, endpoint);
    if (!peer || peer->seed)
        return;
    if (!peer->greeted)
        self->ungreeted--;
    zhashx_delete (self->peers, endpoint);
}

static void
s_send_state_to_all (s_membership_t *self)
{
    s_make_state (self);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (s_send_to (peer, &self->state) && !peer->greeted) {
            peer->greeted = true;
            self->ungreeted--;
        }
}

//  Applies our own state to our own registry, as any peer's
static void s_receive (s_membership_t *self, const void *data, size_t size);

static void
s_refresh_self (s_membership_t *self)
{
    s_make_state (self);
    s_receive (self, self->state.data, self->state.size);
}

//  --------------------------------------------------------------------------
//  Receiving

static bool
s_text_is (const msgpack_object *object, const char *text)
{
    return object->type == MSGPACK_OBJECT_STR && object->via.str.size == strlen (text)
        && memcmp (object->via.str.ptr, text, object->via.str.size) == 0;
}

static bool
s_copy_text (const msgpack_object *object, char *buffer, size_t size)
{
    if (object->type != MSGPACK_OBJECT_STR || object->via.str.size == 0
        || object->via.str.size >= size)
        return false;
    memcpy (buffer, object->via.str.ptr, object->via.str.size);
    buffer [object->via.str.size] = 0;
    return true;
}

static void
s_refuse (s_membership_t *self, const char *why)
{
    shoal_node_count_refused (self->node);
    zsys_debug ("shoal: node %s: refused gossip: %s", self->config->id, why);
}

static void
s_receive (s_membership_t *self, const void *data, size_t size)
{
    char error [256];
    if (shoal_reader_check (data, size, 4, error, sizeof (error))) {
        s_refuse (self, error);
        return;
    }
    msgpack_object root;
    size_t offset = 0;
    msgpack_zone_clear (&self->zone);
    if (msgpack_unpack ((const char *) data, size, &offset, &self->zone, &root)
            != MSGPACK_UNPACK_SUCCESS
        || root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size < 6) {
        s_refuse (self, "not a gossip message");
        return;
    }
    const msgpack_object *field = root.via.array.ptr;
    char node [65];
    if (!s_text_is (&field [0], SHOAL_GOSSIP_SIGNATURE)
        || field [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
        || field [1].via.u64 != SHOAL_PROTOCOL_VERSION
        || !s_text_is (&field [3], self->config->cluster)
        || !s_copy_text (&field [4], node, sizeof (node))
        || field [5].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        s_refuse (self, "another protocol, version or cluster");
        return;
    }
    uint64_t incarnation = field [5].via.u64;
    if (zhashx_lookup (self->cut, node))
        return;                         //  a fault: lost on the wire
    if (s_text_is (&field [2], "BYE")) {
        if (streq (node, self->config->id))
            return;
        //  Gone for good: its socket too, or it would reconnect for nothing
        const char *endpoint = shoal_registry_endpoint (self->registry, node);
        char *gone = endpoint ? strdup (endpoint) : NULL;
        if (shoal_registry_remove (self->registry, node))
            self->changed = true;
        if (gone)
            s_forget (self, gone);
        free (gone);
        return;
    }
    char endpoint [256];
    //  Its endpoint must be of our own transport: we will connect to it
    //  Version 1 nodes without events send 10 fields
    if (!s_text_is (&field [2], "STATE")
        || (root.via.array.size != 10 && root.via.array.size != 11)
        || !s_copy_text (&field [6], endpoint, sizeof (endpoint))
        || strncmp (endpoint, self->config->endpoint, 6) != 0
        || field [9].type != MSGPACK_OBJECT_ARRAY) {
        s_refuse (self, "malformed STATE");
        return;
    }
    bool known = shoal_registry_knows (self->registry, node);
    int rc = shoal_registry_update (self->registry, node, incarnation, endpoint, &field [7],
                                    &field [8],
                                    root.via.array.size > 10 ? &field [10] : NULL,
                                    zclock_mono (), error, sizeof (error));
    if (rc < 0) {
        s_refuse (self, error);
        return;
    }
    if (rc > 0)
        self->changed = true;
    if (streq (node, self->config->id))
        return;
    //  A node we did not know: answer at once, so it knows us in one round
    //  trip; and introduce ourselves to the peers it knows
    s_peer_t *peer = s_introduce (self, endpoint, false);
    if (peer) {
        if (!known || peer->heard == 0) {
            s_make_state (self);
            if (s_send_to (peer, &self->state) && !peer->greeted) {
                peer->greeted = true;
                self->ungreeted--;
            }
        }
        peer->heard = zclock_mono ();
    }
    const msgpack_object *peers = &field [9];
    for (uint32_t index = 0; index < peers->via.array.size; index++) {
        char other [256];
        //  Only endpoints of our own transport: a rumour cannot make us
        //  connect to ipc paths or anything else
        if (s_copy_text (&peers->via.array.ptr [index], other, sizeof (other))
            && strncmp (other, self->config->endpoint, 6) == 0)
            s_introduce (self, other, false);
    }
}

static void
s_receive_all (s_membership_t *self)
{
    void *handle = zsock_resolve (self->router);
    while (true) {
        zmq_msg_t identity, frame;
        zmq_msg_init (&identity);
        if (zmq_msg_recv (&identity, handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&identity);
            return;
        }
        zmq_msg_init (&frame);
        bool good = zmq_msg_more (&identity) && zmq_msg_recv (&frame, handle, 0) != -1
                 && !zmq_msg_more (&frame);
        while (zmq_msg_more (&frame) || (!good && zmq_msg_more (&identity))) {
            zmq_msg_t surplus;
            zmq_msg_init (&surplus);
            zmq_msg_recv (&surplus, handle, 0);
            bool more = zmq_msg_more (&surplus);
            zmq_msg_close (&surplus);
            zmq_msg_close (&identity);
            zmq_msg_init (&identity);
            if (!more)
                break;
            good = false;
        }
        if (good)
            s_receive (self, zmq_msg_data (&frame), zmq_msg_size (&frame));
        else
            s_refuse (self, "wrong number of frames");
        zmq_msg_close (&frame);
        zmq_msg_close (&identity);
    }
}

static void
s_receive_beacon (s_membership_t *self)
{
    char *address = zstr_recv (self->beacon);
    zframe_t *payload = zframe_recv (self->beacon);
    //  "SHL" version port(2) cluster
    if (address && payload && zframe_size (payload) > 6
        && memcmp (zframe_data (payload), "SHL", 3) == 0
        && zframe_data (payload) [3] == SHOAL_PROTOCOL_VERSION) {
        const byte *data = zframe_data (payload);
        int port = (data [4] << 8) | data [5];
        size_t length = zframe_size (payload) - 6;
        if (length == strlen (self->config->cluster)
            && memcmp (data + 6, self->config->cluster, length) == 0 && port > 0) {
            char endpoint [128];
            snprintf (endpoint, sizeof (endpoint), "tcp://%s:%d", address, port);
            s_introduce (self, endpoint, false);
        }
        else
            shoal_node_count_refused (self->node);
    }
    else
        shoal_node_count_refused (self->node);
    zstr_free (&address);
    zframe_destroy (&payload);
}

//  --------------------------------------------------------------------------
//  Discovery and the beat

static void
s_scan_rendezvous (s_membership_t *self)
{
    if (!self->rendezvous)
        return;
    zlistx_t *found = zlistx_new ();
    zlistx_set_destructor (found, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *dead = zlistx_new ();
    zlistx_set_destructor (dead, (zlistx_destructor_fn *) zstr_free);
    shoal_rendezvous_scan (self->rendezvous, found, dead);
    for (char *endpoint = (char *) zlistx_first (found); endpoint;
         endpoint = (char *) zlistx_next (found))
        s_introduce (self, endpoint, false);
    //  A node whose lock fell is dead (killed, crashed): no need to wait for
    //  its silence to last the whole expiry
    for (char *node = (char *) zlistx_first (dead); node; node = (char *) zlistx_next (dead))
        if (shoal_registry_remove (self->registry, node))
            self->changed = true;
    zlistx_destroy (&found);
    zlistx_destroy (&dead);
}

static void
s_beat (s_membership_t *self)
{
    int64_t now = zclock_mono ();
    s_refresh_self (self);
    //  A beat far later than due means this node was paused (frozen, or the
    //  machine overloaded): the silence it sees is its own; judge it at the
    //  next beat, once the peers have had a chance to be heard
    bool paused = self->last_beat && now - self->last_beat > 2 * self->config->beat;
    if (!paused && shoal_registry_expire (self->registry, now, self->config->expiry, NULL))
        self->changed = true;
    self->last_beat = now;
    s_scan_rendezvous (self);
    //  Close the sockets of peers that never answered within the expiry, or
    //  fell silent for long (seeds are kept): rumours and the dead cost no
    //  reconnections for ever
    zlistx_t *forgotten = zlistx_new ();
    zlistx_set_duplicator (forgotten, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (forgotten, (zlistx_destructor_fn *) zstr_free);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (peer->heard ? now - peer->heard > SHOAL_GOSSIP_FORGET
                        : now - peer->made > self->config->expiry)
            zlistx_add_end (forgotten, (void *) zhashx_cursor (self->peers));
    for (char *endpoint = (char *) zlistx_first (forgotten); endpoint;
         endpoint = (char *) zlistx_next (forgotten))
        s_forget (self, endpoint);
    zlistx_destroy (&forgotten);
    s_send_state_to_all (self);
    self->next_beat = now + self->config->beat;
}

//  Marks the peer socket of node ID cut or not
static void
s_mark_cut (s_membership_t *self, const char *endpoint, bool cut)
{
    s_peer_t *peer = endpoint ? (s_peer_t *) zhashx_lookup (self->peers, endpoint) : NULL;
    if (peer)
        peer->cut = cut;
}

//  Handles a command from the node: [command, pointer, text]; returns
//  false on $TERM
static bool
s_command (s_membership_t *self)
{
    zmsg_t *message = zmsg_recv (self->pipe);
    if (!message)
        return false;
    char *command = zmsg_popstr (message);
    zframe_t *frame = zmsg_pop (message);
    void *pointer = NULL;
    if (frame && zframe_size (frame) == sizeof (void *))
        memcpy (&pointer, zframe_data (frame), sizeof (void *));
    zframe_destroy (&frame);
    char *text = zmsg_popstr (message);
    zmsg_destroy (&message);
    bool carry_on = true;
    shoal_instance_slot_t *slot = (shoal_instance_slot_t *) pointer;
    if (!command || streq (command, "$TERM"))
        carry_on = false;
    else if (streq (command, "FREEZE") || streq (command, "THAW")) {
        //  A fault (shoal_testkit). Frozen, the node still takes commands
        //  (a service may stop meanwhile: its slot must leave our list) but
        //  sends, hears and publishes nothing. Thawed, its next beat is
        //  late, so it will not judge the silence that was its own
        self->frozen = streq (command, "FREEZE");
        zsock_signal (self->pipe, 0);
    }
    else {
        if (streq (command, "ADD"))
            zlistx_add_end (self->locals, slot);
        else if (streq (command, "SUB"))
            zlistx_add_end (self->subscribers, pointer);
        else if (streq (command, "UNSUB")) {
            void *handle = zlistx_find (self->subscribers, pointer);
            if (handle)
                zlistx_delete (self->subscribers, handle);
        }
        else if (streq (command, "DRAIN"))
            atomic_store (&slot->draining, 1);
        else if (streq (command, "REMOVE")) {
            void *handle = zlistx_find (self->locals, slot);
            if (handle)
                zlistx_delete (self->locals, handle);
        }
        else if (streq (command, "IDEMPOTENT") && text)
            zlistx_add_end (slot->idempotent, text);
        else if (streq (command, "CUT") && text) {
            const char *endpoint = shoal_registry_endpoint (self->registry, text);
            zhashx_update (self->cut, text, endpoint ? strdup (endpoint) : strdup (""));
            s_mark_cut (self, endpoint, true);
        }
        else if (streq (command, "HEAL") && text) {
            char *endpoint = (char *) zhashx_lookup (self->cut, text);
            s_mark_cut (self, endpoint, false);
            zhashx_delete (self->cut, text);
        }
        //  Tell everyone now, not at the next beat (unless frozen)
        if (!self->frozen) {
            s_refresh_self (self);
            s_send_state_to_all (self);
            if (self->changed)
                s_publish (self);
        }
        zsock_signal (self->pipe, 0);
    }
    zstr_free (&command);
    zstr_free (&text);
    return carry_on;
}

//  --------------------------------------------------------------------------

static int
s_start (s_membership_t *self)
{
    shoal_node_config_t *config = self->config;
    if (config->interface) {
        //  Beacons bind the process-wide interface: set it for this one
        zsys_set_interface (config->interface);
        self->beacon = zactor_new (zbeacon, NULL);
        zsock_send (self->beacon, "si", "CONFIGURE", 5670);
        char *hostname = zstr_recv (self->beacon);
        if (!hostname || !*hostname) {
            snprintf (config->error, sizeof (config->error),
                      "no broadcast address on interface '%s'", config->interface);
            zstr_free (&hostname);
            return -1;
        }
        if (!config->host)
            config->host = strdup (hostname);
        zstr_free (&hostname);
    }
    if (!config->host)
        config->host = strdup ("127.0.0.1");
    if (shoal_node_open_events (self->node))
        return -1;
    char bind [160];
    if (streq (config->host, "inproc"))
        //  A cluster inside one process (tests): no network at all
        snprintf (bind, sizeof (bind), "inproc://shoal-node/%s/%s", config->cluster,
                  config->id);
    else if (config->port == 0)
        snprintf (bind, sizeof (bind), "tcp://%s:*", config->host);
    else
        snprintf (bind, sizeof (bind), "tcp://%s:%d", config->host, config->port);
    self->router = shoal_socket_server (bind, NULL, SHOAL_GOSSIP_MAX_MESSAGE, config->endpoint,
                                        sizeof (config->endpoint), config->error,
                                        sizeof (config->error));
    if (!self->router)
        return -1;
    zsock_set_linger (self->router, 0);
    if (self->beacon) {
        byte payload [6 + 64];
        int port = atoi (strrchr (config->endpoint, ':') + 1);
        memcpy (payload, "SHL", 3);
        payload [3] = SHOAL_PROTOCOL_VERSION;
        payload [4] = (byte) (port >> 8);
        payload [5] = (byte) port;
        size_t length = strlen (config->cluster);
        memcpy (payload + 6, config->cluster, length);
        zsock_send (self->beacon, "sbi", "PUBLISH", payload, 6 + length,
                    SHOAL_DEFAULT_BEACON);
        zsock_send (self->beacon, "sb", "SUBSCRIBE", "SHL", (size_t) 3);
    }
    char error [256];
    self->rendezvous = shoal_rendezvous_new (config->rendezvous, config->cluster, config->id,
                                             config->endpoint, error, sizeof (error));
    if (!self->rendezvous)
        zsys_warning ("shoal: node %s: no same-host discovery: %s", config->id, error);
    s_refresh_self (self);
    zlistx_t *seeds = zlistx_size (config->seeds) ? config->seeds : config->env_seeds;
    for (char *seed = (char *) zlistx_first (seeds); seed; seed = (char *) zlistx_next (seeds))
        s_introduce (self, seed, true);
    s_scan_rendezvous (self);
    s_publish (self);
    return 0;
}

void
shoal_membership_actor (zsock_t *pipe, void *node)
{
    s_membership_t *self = (s_membership_t *) zmalloc (sizeof (s_membership_t));
    self->node = (shoal_node_t *) node;
    self->config = shoal_node_config (self->node);
    self->pipe = pipe;
    self->registry = shoal_registry_new (self->config->id);
    self->peers = zhashx_new ();
    zhashx_set_destructor (self->peers, s_peer_destroy);
    self->locals = zlistx_new ();
    self->subscribers = zlistx_new ();
    self->cut = zhashx_new ();
    zhashx_set_destructor (self->cut, (zhashx_destructor_fn *) zstr_free);
    self->incarnation = (uint64_t) zclock_time ();
    msgpack_sbuffer_init (&self->state);
    msgpack_zone_init (&self->zone, 4096);
    int rc = s_start (self);
    zsock_signal (pipe, rc == 0 ? 0 : 1);
    self->next_beat = zclock_mono () + self->config->beat;
    while (rc == 0) {
        zmq_pollitem_t items [3] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
            { self->beacon ? zsock_resolve (self->beacon) : NULL, 0, ZMQ_POLLIN, 0 },
        };
        int64_t wait = self->next_beat - zclock_mono ();
        if (self->ungreeted && wait > SHOAL_GREET_RETRY)
            wait = SHOAL_GREET_RETRY;
        if (self->frozen) {
            //  Only commands, until thawed
            if (zmq_poll (items, 1, -1) == -1 && errno != EINTR)
                break;
            if ((items [0].revents & ZMQ_POLLIN) && !s_command (self))
                break;
            continue;
        }
        if (zmq_poll (items, self->beacon ? 3 : 2, wait > 0 ? (long) wait : 0) == -1
            && errno != EINTR)
            break;
        if (self->ungreeted)
            s_greet (self);
        //  Messages first: a node that was frozen must hear its peers again
        //  before it judges their silence
        if (items [1].revents & ZMQ_POLLIN)
            s_receive_all (self);
        if (self->beacon && (items [2].revents & ZMQ_POLLIN))
            s_receive_beacon (self);
        if (zclock_mono () >= self->next_beat)
            s_beat (self);
        if (self->changed)
            s_publish (self);
        if ((items [0].revents & ZMQ_POLLIN) && !s_command (self))
            break;
    }
    //  Goodbye, so the others drop us now rather than after the expiry
    msgpack_sbuffer_clear (&self->state);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &self->state, msgpack_sbuffer_write);
    s_pack_preamble (self, &packer, 6, "BYE");
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        s_send_to (peer, &self->state);
    zactor_destroy (&self->beacon);
    shoal_rendezvous_destroy (&self->rendezvous);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->cut);
    zlistx_destroy (&self->locals);
    zlistx_destroy (&self->subscribers);
    zsock_destroy (&self->router);
    shoal_registry_destroy (&self->registry);
    msgpack_sbuffer_destroy (&self->state);
    msgpack_zone_destroy (&self->zone);
    free (self);
}
