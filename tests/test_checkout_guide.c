/*  test_checkout_guide - the example of docs/testing.md, which quotes it:
    checkout tested for real, with cart real too (two instances, one of
    which crashes mid-test) and payments mocked. Change one, change both. */
#include <shoal.h>
#include <czmq.h>
#include "tap.h"

//  --------------------------------------------------------------------------
//  cart: carts in memory, per instance. "add" is not idempotent (twice adds
//  twice), "get" is. Callers use the cart id as key, so that a cart stays
//  on one instance.

typedef struct {
    zhashx_t *carts;            //  cart id -> int [2]: items, total
} cart_t;

static void *
s_cart_new (void *arg)
{
    cart_t *self = (cart_t *) zmalloc (sizeof (cart_t));
    self->carts = zhashx_new ();
    zhashx_set_destructor (self->carts, (zhashx_destructor_fn *) zstr_free);
    return self;
}

static void
s_cart_destroy (void *state)
{
    cart_t *self = (cart_t *) state;
    zhashx_destroy (&self->carts);
    free (self);
}

//  {"cart": id, "sku": s, "price": p} -> {"items": n, "total": t, "node": id}
static void
s_cart_add (shoal_request_t *request, void *state)
{
    cart_t *self = (cart_t *) state;
    int cart, price;
    const char *sku;
    if (shoal_request_get (request, "{s:i, s:s, s:i}", "cart", &cart, "sku", &sku, "price",
                           &price))
        return;
    char key [16];
    snprintf (key, sizeof (key), "%d", cart);
    int *content = (int *) zhashx_lookup (self->carts, key);
    if (!content) {
        content = (int *) zmalloc (2 * sizeof (int));
        zhashx_insert (self->carts, key, content);
    }
    content [0] += 1;
    content [1] += price;
    shoal_request_reply (request, "{s:i, s:i, s:s}", "items", content [0], "total",
                         content [1], "node", shoal_request_node (request));
}

//  {"cart": id} -> {"items": n, "total": t}
static void
s_cart_get (shoal_request_t *request, void *state)
{
    cart_t *self = (cart_t *) state;
    int cart;
    if (shoal_request_get (request, "{s:i}", "cart", &cart))
        return;
    char key [16];
    snprintf (key, sizeof (key), "%d", cart);
    int *content = (int *) zhashx_lookup (self->carts, key);
    shoal_request_reply (request, "{s:i, s:i}", "items", content ? content [0] : 0, "total",
                         content ? content [1] : 0);
}

static shoal_service_t *
s_cart_service (void)
{
    shoal_service_t *service = shoal_service_new ("cart", "1.0.0");
    shoal_service_set_state (service, s_cart_new, s_cart_destroy, NULL);
    shoal_service_method (service, "add", s_cart_add, 0, "{cart, sku, price}");
    shoal_service_method (service, "get", s_cart_get, SHOAL_IDEMPOTENT, "{cart}");
    return service;
}

//  --------------------------------------------------------------------------
//  checkout: "buy" reads the cart, then charges its total. Not idempotent:
//  a buy sent twice could charge twice.

//  {"cart": id} -> {"paid": true, "total": t, "receipt": r}
static void
s_checkout_buy (shoal_request_t *request, void *state)
{
    int cart;
    if (shoal_request_get (request, "{s:i}", "cart", &cart))
        return;
    //  The cart, from the instance that holds it (the id is the key)
    char key [16];
    snprintf (key, sizeof (key), "%d", cart);
    shoal_body_t *body = shoal_body_pack ("{s:i}", "cart", cart);
    int left = shoal_request_remaining (request);
    shoal_call_t *call = shoal_client_send_key (shoal_request_client (request), key, "cart",
                                                "get", shoal_body_data (body),
                                                shoal_body_size (body), left > 0 ? left : 1);
    shoal_body_destroy (&body);
    int items = 0, total = 0;
    if (shoal_call_wait (call) != SHOAL_OK)
        shoal_request_fail (request, SHOAL_UNAVAILABLE, "cart: %s", shoal_call_message (call));
    else if (shoal_call_get (call, "{s:i, s:i}", "items", &items, "total", &total))
        shoal_request_fail (request, SHOAL_INTERNAL, "cart: %s", shoal_call_get_error (call));
    else if (items == 0)
        shoal_request_fail (request, SHOAL_FAILED_PRECONDITION, "cart %d is empty", cart);
    shoal_call_destroy (&call);
    if (shoal_request_answered (request))
        return;

    //  The charge, by name: a second at most, and never more than is left
    //  of our own caller's deadline
    body = shoal_body_pack ("{s:i, s:i}", "cart", cart, "amount", total);
    call = shoal_request_call (request, NULL, "payments", "charge", shoal_body_data (body),
                               shoal_body_size (body), 1000);
    shoal_body_destroy (&body);
    const char *receipt;
    if (shoal_call_status (call) != SHOAL_OK)
        shoal_request_fail (request, SHOAL_ABORTED, "payment failed: %s",
                            shoal_call_message (call));
    else if (shoal_call_get (call, "{s:s}", "receipt", &receipt))
        shoal_request_fail (request, SHOAL_INTERNAL, "payments: %s",
                            shoal_call_get_error (call));
    else
        shoal_request_reply (request, "{s:b, s:i, s:s}", "paid", 1, "total", total, "receipt",
                             receipt);
    shoal_call_destroy (&call);
}

static shoal_service_t *
s_checkout_service (void)
{
    shoal_service_t *service = shoal_service_new ("checkout", "1.0.0");
    shoal_service_method (service, "buy", s_checkout_buy, 0, "{cart}: pays for a cart");
    return service;
}

//  --------------------------------------------------------------------------
//  The test

//  Every kit function returns 0 or -1 and says why in shoal_testkit_error:
//  plain C needs no more than this (tap.h writes the "ok N" lines that
//  make check counts)
#define CHECK(kit, step, what) \
    do { \
        if (!tap_ok ((step) == 0, "%s", what)) \
            tap_diag ("%s", shoal_testkit_error (kit)); \
    } while (0)

//  Adds an item to a cart, keyed by the cart id as checkout reads it;
//  returns the node of the cart instance that holds it (the caller frees it)
static char *
s_add (shoal_testkit_t *kit, int cart, const char *sku, int price)
{
    char key [16];
    snprintf (key, sizeof (key), "%d", cart);
    shoal_body_t *body = shoal_body_pack ("{s:i, s:s, s:i}", "cart", cart, "sku", sku, "price",
                                          price);
    shoal_call_t *call = shoal_client_send_key (shoal_testkit_client (kit, 0), key, "cart",
                                                "add", shoal_body_data (body),
                                                shoal_body_size (body), 1000);
    shoal_body_destroy (&body);
    const char *node = NULL;
    if (shoal_call_wait (call) == SHOAL_OK)
        shoal_call_get (call, "{s:s}", "node", &node);
    char *holder = node ? strdup (node) : NULL;
    shoal_call_destroy (&call);
    return holder;
}

//  Asks checkout to buy CART, from a client on node 0
static shoal_call_t *
s_buy (shoal_testkit_t *kit, int cart)
{
    return shoal_client_callf (shoal_testkit_client (kit, 0), NULL, "checkout", "buy", 2000,
                               "{s:i}", "cart", cart);
}

int
main (void)
{
    //  A cluster of two nodes, in this process, of its own
    shoal_testkit_t *kit = shoal_testkit_new (2);
    if (!kit)
        tap_bail ("the kit did not start");

    //  The services under test, as they are: checkout on node 0, and cart
    //  with an instance on each node (kill index 0 on node 0, 1 on node 1)
    shoal_service_t *checkout = s_checkout_service ();
    CHECK (kit, shoal_testkit_spawn (kit, 0, &checkout, 1), "checkout runs on node 0");
    for (size_t node = 0; node < 2; node++) {
        shoal_service_t *cart = s_cart_service ();
        CHECK (kit, shoal_testkit_spawn (kit, node, &cart, 1), "a cart instance runs");
    }
    CHECK (kit, shoal_testkit_wait_up (kit, "cart", 2, 2000), "both carts are up everywhere");
    CHECK (kit, shoal_testkit_wait_up (kit, "checkout", 1, 2000), "checkout is up everywhere");

    //  payments is a mock: it charges 30, declines 45, and nothing else
    shoal_mock_t *payments = shoal_testkit_mock (kit, 1, "payments");
    if (!payments)
        tap_bail ("no mock: %s", shoal_testkit_error (kit));
    shoal_mock_on (payments, "charge", "{\"amount\": 30}", "{\"receipt\": \"R-30\"}");
    shoal_mock_fail (payments, "charge", "{\"amount\": 45}", SHOAL_FAILED_PRECONDITION,
                     "card declined");

    //  A cart of 30 is bought and charged 30, once
    char *holder = s_add (kit, 7, "book", 30);
    tap_ok (holder != NULL, "a book is in cart 7");
    shoal_call_t *call = s_buy (kit, 7);
    CHECK (kit, shoal_testkit_check_call (kit, call, SHOAL_OK,
                                          "{\"paid\": true, \"total\": 30, \"receipt\": \"R-30\"}"),
           "cart 7 is bought");
    shoal_call_destroy (&call);
    CHECK (kit, shoal_mock_wait_calls (payments, "charge", 1, 1000), "payments was asked");
    char *charged = shoal_mock_body (payments, "charge", 0);
    tap_ok (charged && streq (charged, "{\"cart\": 7, \"amount\": 30}"), "for 30: %s",
            charged ? charged : "nothing");
    free (charged);

    //  An empty cart is refused before payments hears of it
    call = s_buy (kit, 8);
    CHECK (kit, shoal_testkit_check_call (kit, call, SHOAL_FAILED_PRECONDITION, NULL),
           "an empty cart cannot be bought");
    shoal_call_destroy (&call);
    tap_ok (shoal_mock_calls (payments, "charge") == 1, "and nothing was charged");

    //  A declined card: checkout says so, and the order is not paid
    free (s_add (kit, 9, "lamp", 45));
    call = s_buy (kit, 9);
    CHECK (kit, shoal_testkit_check_call (kit, call, SHOAL_ABORTED, NULL),
           "a declined card aborts the order");
    tap_ok (streq (shoal_call_message (call), "payment failed: card declined"),
            "saying why: %s", shoal_call_message (call));
    shoal_call_destroy (&call);

    //  The cart instance that holds cart 7 crashes. Carts live in memory,
    //  so cart 7 is gone with it: checkout must refuse to charge it again
    size_t index = holder && streq (holder, shoal_node_id (shoal_testkit_node (kit, 0))) ? 0 : 1;
    CHECK (kit, shoal_testkit_kill (kit, "cart", index), "the instance holding cart 7 crashes");
    CHECK (kit, shoal_testkit_wait_gone (kit, "cart", 1, 2000), "every node sees it gone");
    call = s_buy (kit, 7);
    CHECK (kit, shoal_testkit_check_call (kit, call, SHOAL_FAILED_PRECONDITION, NULL),
           "cart 7 is empty now, on the instance that is left");
    shoal_call_destroy (&call);
    tap_ok (shoal_mock_calls (payments, "charge") == 2, "payments was charged 30, then 45");
    free (holder);

    //  The rest of the shop still works: a new cart is bought
    free (s_add (kit, 10, "pen", 30));
    call = s_buy (kit, 10);
    CHECK (kit, shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"paid\": true}"),
           "cart 10 is bought on the cart instance that is left");
    shoal_call_destroy (&call);

    //  payments got nothing it did not expect
    CHECK (kit, shoal_mock_verify (payments), "payments got no unexpected call");
    shoal_testkit_destroy (&kit);
    return tap_exit_status ();
}
