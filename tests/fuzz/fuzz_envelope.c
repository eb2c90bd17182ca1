/* Fuzz target: es_event_parse() takes bytes straight from Kafka. Whatever
 * they are, it must return an event or a reason, never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct es_event *ev = es_event_parse(data, size, err, sizeof(err));

	if (ev) {
		/* What parsed must serialize and parse again to the same. */
		char *text = es_event_serialize(ev);
		struct es_event *again = es_event_parse(text, strlen(text), err, sizeof(err));

		if (!again || strcmp(again->id, ev->id))
			abort();
		es_event_free(again);
		free(text);
		es_event_free(ev);
	} else if (!err[0]) {
		abort(); /* a rejection always says why */
	}
	return 0;
}
