-- Legacy shapes -> [{"label": ..., "text": ...}]:
--   ["a", "b"]          -> labels A, B, ... by position (objects in the array are kept as they are)
--   {"A": "a", "B": "b"} -> one object per key, ordered by label
--   a scalar "a"        -> [{"label": "A", "text": "a"}];  null -> []
UPDATE proposals p
   SET variants = CASE jsonb_typeof(p.variants)
       WHEN 'array' THEN (
           SELECT coalesce(jsonb_agg(
                      CASE WHEN jsonb_typeof(e.value) = 'object' THEN e.value
                           ELSE jsonb_build_object(
                                    'label', CASE WHEN e.ord <= 26 THEN chr(64 + e.ord::int) ELSE e.ord::text END,
                                    'text', e.value #>> '{}')
                      END ORDER BY e.ord), '[]'::jsonb)
             FROM jsonb_array_elements(p.variants) WITH ORDINALITY AS e(value, ord))
       WHEN 'object' THEN (
           SELECT coalesce(jsonb_agg(jsonb_build_object('label', o.key, 'text', o.value #>> '{}') ORDER BY o.key), '[]'::jsonb)
             FROM jsonb_each(p.variants) AS o)
       WHEN 'null' THEN '[]'::jsonb
       ELSE jsonb_build_array(jsonb_build_object('label', 'A', 'text', p.variants #>> '{}'))
   END
 WHERE p.id > $1 AND p.id <= $2
   AND (jsonb_typeof(p.variants) <> 'array'
        OR jsonb_path_exists(p.variants, '$[*] ? (@.type() != "object")'));
