/* SPDX-License-Identifier: MIT */
/*
 * floor-grpc: the resident memory of a process that does nothing but what the OTLP/gRPC
 * exporter's library must do, for bench/bench-scale.sh to print beside the daemon's idle
 * RSS: grpc core (with the abseil, protobuf, OpenSSL and libstdc++ it brings) set up, one
 * insecure channel, and then one TraceService/Export call with an empty request.
 *
 *   floor-grpc TARGET        e.g. 127.0.0.1:4317
 *
 * Prints a "floor:" line 2 s after the channel was made (the daemon's idle state: it makes
 * its channel at start) and another 2 s after the call's status came. Exits 1 when the call
 * did not end OK. A benchmark helper: it prints figures and asserts nothing.
 */
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "floor.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

/* One Export call on ch, an empty ExportTraceServiceRequest, waited for on cq: its status. */
static grpc_status_code export_once(grpc_channel *ch, grpc_completion_queue *cq)
{
        grpc_slice method = grpc_slice_from_static_string(EXPORT_METHOD),
                   empty = grpc_empty_slice();
        gpr_timespec deadline = gpr_time_from_seconds(10, GPR_TIMESPAN);
        grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&empty, 1), *resp = NULL;
        grpc_metadata_array initial, trailing;
        grpc_status_code status = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();
        grpc_op ops[6];
        grpc_call *call;
        grpc_event ev;

        deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), deadline);
        call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                        deadline, NULL);
        grpc_metadata_array_init(&initial);
        grpc_metadata_array_init(&trailing);
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = req;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &resp;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
        ops[5].data.recv_status_on_client.status = &status;
        ops[5].data.recv_status_on_client.status_details = &details;
        if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
                do
                        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                        NULL);
                while (ev.type != GRPC_OP_COMPLETE);
        }
        grpc_call_unref(call);
        grpc_byte_buffer_destroy(req);
        grpc_byte_buffer_destroy(resp);
        grpc_metadata_array_destroy(&initial);
        grpc_metadata_array_destroy(&trailing);
        grpc_slice_unref(details);
        return status;
}

int main(int argc, char **argv)
{
        grpc_channel_credentials *creds;
        grpc_completion_queue *cq;
        grpc_status_code status;
        grpc_channel *ch;
        char what[512];

        if (argc != 2 || argv[1][0] == '-') {
                fprintf(stderr, "usage: floor-grpc TARGET\n");
                return 2;
        }
        grpc_init();
        creds = grpc_insecure_credentials_create();
        ch = grpc_channel_create(argv[1], creds, NULL);
        grpc_channel_credentials_release(creds);
        cq = grpc_completion_queue_create_for_next(NULL);
        floor_settle();
        floor_print("grpc core", "2 s after grpc_init and one insecure channel");
        status = export_once(ch, cq);
        if (status != GRPC_STATUS_OK) {
                fprintf(stderr, "floor-grpc: Export to %s: status %d\n", argv[1], (int)status);
                return 1;
        }
        floor_settle();
        snprintf(what, sizeof(what), "2 s after one Export call to %s", argv[1]);
        floor_print("grpc core", what);
        grpc_channel_destroy(ch);
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(cq);
        grpc_shutdown();
        return 0;
}
