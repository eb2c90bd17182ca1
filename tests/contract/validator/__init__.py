"""The checks of tests/contract/validate.py, by concern.

common     the contract's facts (event types, producers, topics, headers),
           the report, errors
loading    strict JSON and YAML, the records of an input file
store      every document of schemas/, validation against it, $refs,
           the checks every schema gets (meta-schema, $refs resolving)
schemas    (a) the files of schemas/: event and envelope schemas, and
           each file to its check
openapi    (a) an OpenAPI 3.1 document
asyncapi   (a) an AsyncAPI 3.0 document, and against the contract
events     (b) CloudEvents and Kafka records, and the rules across a saga
exchanges  (c) recorded HTTP exchanges against the OpenAPI documents

validate.py checks that jsonschema and yaml can be imported before it
imports any of these.
"""
