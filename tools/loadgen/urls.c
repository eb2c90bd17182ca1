#include <stdio.h>
#include <string.h>

#include "loadgen.h"

int lg_urls_parse(struct lg_config *cfg, const char *list, char *errstr, size_t errstr_size)
{
	size_t used = 0;

	cfg->nurls = 0;
	cfg->url[0] = '\0';
	for (const char *url = list;; url++) {
		size_t len = strcspn(url, ",");
		char *dst;

		if (cfg->nurls == LG_URLS_MAX) {
			snprintf(errstr, errstr_size, "at most %d URLs", LG_URLS_MAX);
			return -1;
		}
		if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
			snprintf(errstr, errstr_size, "\"%.*s\" is not an http:// or https:// URL",
				 (int)(len > 200 ? 200 : len), url);
			return -1;
		}
		if (len >= LG_URL_MAX || used + len + 1 >= sizeof(cfg->url)) {
			snprintf(errstr, errstr_size, "longer than %d bytes", LG_URL_MAX - 1);
			return -1;
		}
		dst = cfg->urls[cfg->nurls++];
		memcpy(dst, url, len);
		while (len > 0 && dst[len - 1] == '/')
			len--;
		dst[len] = '\0';
		if (used)
			cfg->url[used++] = ',';
		memcpy(cfg->url + used, dst, len + 1);
		used += len;
		url += strcspn(url, ",");
		if (!*url)
			return 0;
	}
}
