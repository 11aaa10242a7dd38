/*  shoal - microservices in C over ZeroMQ and msgpack, with no broker.
    The one header to include. Classes, bottom to top:
        shoal_status    the error enum, shared with the wire
        shoal_body      building msgpack bodies (format strings, JSON)
        shoal_reader    reading msgpack bodies, field by field
        shoal_event     an event: topic, body, publisher, number
        shoal_view      a snapshot of who serves what in the cluster
        shoal_node      this process's member of a cluster
        shoal_service   a service: name, methods, instance actors
        shoal_request   what a handler gets, and how it answers
        shoal_client    calls from any thread
        shoal_call      one call and its reply
        shoal_subscriber    events in a plain thread
        shoal_testkit   integration tests: a cluster, mocks, waits, faults                              */
#ifndef SHOAL_H_INCLUDED
#define SHOAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHOAL_VERSION_MAJOR 0
#define SHOAL_VERSION_MINOR 1
#define SHOAL_VERSION_PATCH 0

//  Version of the wire protocol (docs/protocol.md).
#define SHOAL_PROTOCOL_VERSION 1

#if defined(SHOAL_BUILD)
#   define SHOAL_EXPORT __attribute__ ((visibility ("default")))
#else
#   define SHOAL_EXPORT
#endif

typedef struct _shoal_service_t shoal_service_t;
typedef struct _shoal_request_t shoal_request_t;
typedef struct _shoal_client_t shoal_client_t;
typedef struct _shoal_call_t shoal_call_t;
typedef struct _shoal_node_t shoal_node_t;
typedef struct _shoal_view_t shoal_view_t;
typedef struct _shoal_event_t shoal_event_t;
typedef struct _shoal_subscriber_t shoal_subscriber_t;

#include "shoal_status.h"
#include "shoal_body.h"
#include "shoal_reader.h"
#include "shoal_event.h"
#include "shoal_view.h"
#include "shoal_node.h"
#include "shoal_service.h"
#include "shoal_request.h"
#include "shoal_client.h"
#include "shoal_call.h"
#include "shoal_subscriber.h"
#include "shoal_testkit.h"

#endif
